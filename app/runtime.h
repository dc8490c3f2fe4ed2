#pragma once

#include <torch/types.h>

#include <string>

namespace vit::app {

// "auto" picks CUDA when LibTorch sees a GPU, else the CPU; "cuda[:N]" without a GPU is a
// ConfigError.
torch::Device select_device(const std::string& name);
// LibTorch's intra-op threads: `threads`, or one per core when 0.
void configure_threads(int64_t threads);

}  // namespace vit::app
