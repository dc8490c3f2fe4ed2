#include "app/train/autocast.h"

#include "models/kernels/autocast_state.h"

#include <ATen/autocast_mode.h>

namespace vit::app {

AutocastGuard::AutocastGuard(torch::Device device, torch::ScalarType dtype, bool enabled)
    : device_(device), enabled_(enabled) {
  if (!enabled_) return;
  previous_enabled_ = models::autocast_enabled(device_.type());
  previous_dtype_ = models::autocast_dtype(device_.type());
  models::set_autocast_enabled(device_.type(), true);
  models::set_autocast_dtype(device_.type(), dtype);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!enabled_) return;
  // Leaving the outermost region frees the casted weight copies autocast caches.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  models::set_autocast_enabled(device_.type(), previous_enabled_);
  models::set_autocast_dtype(device_.type(), previous_dtype_);
}

}  // namespace vit::app
