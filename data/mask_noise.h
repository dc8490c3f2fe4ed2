#pragma once

#include <torch/types.h>

#include <cstdint>

namespace vit::data {

// Masked image modelling's per-image noise: `count` uniform [0, 1) draws for each dataset index of
// `indices` (int64 [B]), seeded from (seed, epoch, index) like every other draw of the data
// pipeline, so a sample's mask is the same for any worker count, world size or resume point.
// float32 [B, count] on the CPU.
torch::Tensor mask_noise(const torch::Tensor& indices, uint64_t seed, int64_t epoch, int64_t count);

}  // namespace vit::data
