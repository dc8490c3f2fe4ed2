#include "app/runtime.h"

#include "app/errors.h"

#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include <thread>

namespace vit::app {

torch::Device select_device(const std::string& name) {
  const bool cuda = torch::cuda::is_available();
  if (name == "auto") return cuda ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (!cuda) throw ConfigError("train.device: '" + name + "' requested but this LibTorch sees no CUDA device");
  const auto device = torch::Device(name);
  if (device.has_index() && device.index() >= static_cast<int>(torch::cuda::device_count())) {
    throw ConfigError("train.device: '" + name + "' but only " + std::to_string(torch::cuda::device_count()) +
                      " CUDA devices are visible");
  }
  return device;
}

void configure_threads(int64_t threads) {
  const auto cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads > 0 ? static_cast<int>(threads) : cores);
}

}  // namespace vit::app
