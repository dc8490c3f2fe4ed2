#include "app/loss_scaler.h"

namespace vit::app {

LossScaler::LossScaler(bool enabled, double initial_scale, int64_t growth_interval)
    : enabled_(enabled), scale_(initial_scale), growth_interval_(growth_interval) {}

bool LossScaler::unscale(const std::vector<torch::Tensor>& parameters) {
  if (!enabled_) return true;
  torch::NoGradGuard no_grad;
  bool finite = true;
  for (const auto& parameter : parameters) {
    auto grad = parameter.grad();
    if (!grad.defined()) continue;
    grad.mul_(1.0 / scale_);
    finite = finite && torch::isfinite(grad).all().item<bool>();
  }
  return finite;
}

void LossScaler::update(bool stepped) {
  if (!enabled_) return;
  if (!stepped) {
    scale_ = std::max(1.0, scale_ / 2.0);
    clean_steps_ = 0;
  } else if (++clean_steps_ % growth_interval_ == 0) {
    scale_ *= 2.0;
  }
}

}  // namespace vit::app
