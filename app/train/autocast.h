#pragma once

#include <torch/types.h>

namespace vit::app {

// Mixed precision for the lifetime of the guard: ops that benefit run in `dtype` (bf16 on CPU
// and CUDA, fp16 on CUDA), as torch.autocast does. A disabled guard does nothing.
class AutocastGuard {
 public:
  AutocastGuard(torch::Device device, torch::ScalarType dtype, bool enabled);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  torch::Device device_;
  bool enabled_;
  bool previous_enabled_ = false;
  torch::ScalarType previous_dtype_ = torch::kFloat32;
};

}  // namespace vit::app
