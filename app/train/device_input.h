#pragma once

#include "app/config/config.h"

#include <torch/types.h>

#include <vector>

namespace vit::app {

// Loader batches to model inputs on the device. Float batches arrive normalized and are only
// moved; uint8 batches (what the loader hands a GPU: a quarter of the bytes, from pinned memory)
// are copied asynchronously and normalized there, matching the loader's float pixels.
class DeviceInput {
 public:
  DeviceInput(const std::vector<double>& mean, const std::vector<double>& std, torch::Device device);
  torch::Tensor operator()(const torch::Tensor& images) const;

 private:
  torch::Device device_;
  torch::Tensor scale_;   // [1, C, 1, 1]: 1 / (255 std)
  torch::Tensor offset_;  // [1, C, 1, 1]: mean / std
};

// Whether the loader of one split should hand `device` uint8 batches: on CUDA, unless mixup or
// random erasing need float pixels on the CPU.
bool uint8_batches(const Config& config, bool training, torch::Device device);

}  // namespace vit::app
