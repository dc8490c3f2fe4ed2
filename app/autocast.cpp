#include "app/autocast.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace vit::app {
namespace {

// LibTorch 2.4 made the autocast state per device type; earlier releases have one flag for
// CUDA ("enabled") and one for the CPU.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
bool is_enabled(torch::DeviceType type) { return at::autocast::is_autocast_enabled(type); }
void set_enabled(torch::DeviceType type, bool on) { at::autocast::set_autocast_enabled(type, on); }
torch::ScalarType get_dtype(torch::DeviceType type) { return at::autocast::get_autocast_dtype(type); }
void set_dtype(torch::DeviceType type, torch::ScalarType dtype) { at::autocast::set_autocast_dtype(type, dtype); }
#else
bool is_enabled(torch::DeviceType type) {
  return type == torch::kCPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
}
void set_enabled(torch::DeviceType type, bool on) {
  type == torch::kCPU ? at::autocast::set_cpu_enabled(on) : at::autocast::set_enabled(on);
}
torch::ScalarType get_dtype(torch::DeviceType type) {
  return type == torch::kCPU ? at::autocast::get_autocast_cpu_dtype() : at::autocast::get_autocast_gpu_dtype();
}
void set_dtype(torch::DeviceType type, torch::ScalarType dtype) {
  type == torch::kCPU ? at::autocast::set_autocast_cpu_dtype(dtype) : at::autocast::set_autocast_gpu_dtype(dtype);
}
#endif

}  // namespace

AutocastGuard::AutocastGuard(torch::Device device, torch::ScalarType dtype, bool enabled)
    : device_(device), enabled_(enabled) {
  if (!enabled_) return;
  previous_enabled_ = is_enabled(device_.type());
  previous_dtype_ = get_dtype(device_.type());
  set_enabled(device_.type(), true);
  set_dtype(device_.type(), dtype);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!enabled_) return;
  // Leaving the outermost region frees the casted weight copies autocast caches.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_enabled(device_.type(), previous_enabled_);
  set_dtype(device_.type(), previous_dtype_);
}

}  // namespace vit::app
