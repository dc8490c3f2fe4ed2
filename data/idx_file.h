#pragma once

#include <torch/types.h>

#include <filesystem>

namespace vit::data {

// Reads an unsigned-byte IDX file (MNIST / Fashion-MNIST), gzip-compressed or raw, into a
// uint8 tensor of the dimensions its header declares ([N, rows, cols] images or [N] labels).
// Throws DataError naming the file for a bad magic number, a truncated body or trailing data.
torch::Tensor read_idx_file(const std::filesystem::path& file);

}  // namespace vit::data
