#pragma once

#include "data/dataset.h"

#include <opencv2/core/mat.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace vit::data {

// Width and height as declared by a JPEG, PNG, BMP, WebP or TIFF header, without decoding;
// nullopt for another format or a header too damaged to read.
std::optional<ImageSize> read_image_size(const std::vector<uint8_t>& bytes);

// The header size of an image file (reads at most its first megabyte).
std::optional<ImageSize> read_image_file_size(const std::filesystem::path& file);

// Reads and decodes an image file into 8-bit `channels` channels (RGB order). Refuses files whose
// header declares more than `max_pixels` pixels before decoding them. EXIF orientation is ignored,
// as torchvision's PIL loader does. Throws DataError naming the file.
cv::Mat read_image(const std::filesystem::path& file, int channels, int64_t max_pixels);

}  // namespace vit::data
