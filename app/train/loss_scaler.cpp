#include "app/train/loss_scaler.h"

#include <ATen/ops/_amp_foreach_non_finite_check_and_unscale.h>
#include <ATen/ops/_amp_update_scale.h>

namespace vit::app {
namespace {

constexpr double kGrowthFactor = 2.0;
constexpr double kBackoffFactor = 0.5;

}  // namespace

LossScaler::LossScaler(bool enabled, torch::Device device, double initial_scale, int64_t growth_interval)
    : enabled_(enabled),
      growth_interval_(growth_interval),
      scale_(torch::full({1}, initial_scale, torch::TensorOptions(device).dtype(torch::kFloat32))),
      growth_tracker_(torch::zeros({1}, torch::TensorOptions(device).dtype(torch::kInt32))),
      found_inf_(torch::zeros({1}, torch::TensorOptions(device).dtype(torch::kFloat32))) {}

bool LossScaler::unscale(const std::vector<torch::Tensor>& parameters) {
  if (!enabled_) return true;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> gradients;
  for (const auto& parameter : parameters) {
    if (parameter.grad().defined()) gradients.push_back(parameter.grad());
  }
  found_inf_.zero_();
  at::_amp_foreach_non_finite_check_and_unscale_(gradients, found_inf_, scale_.reciprocal());
  return found_inf_.item<float>() == 0.0F;
}

void LossScaler::update() {
  if (!enabled_) return;
  at::_amp_update_scale_(scale_, growth_tracker_, found_inf_, kGrowthFactor, kBackoffFactor, growth_interval_);
}

torch::Tensor LossScaler::state() const {
  return torch::cat({scale_.to(torch::kCPU, torch::kFloat64), growth_tracker_.to(torch::kCPU, torch::kFloat64)});
}

void LossScaler::load_state(const torch::Tensor& state) {
  TORCH_CHECK(state.numel() == 2, "loss scaler state must hold [scale, clean steps], got ", state.numel(), " values");
  const auto values = state.to(torch::kFloat64);
  scale_.fill_(values[0].item<double>());
  growth_tracker_.fill_(static_cast<int64_t>(values[1].item<double>()));
}

}  // namespace vit::app
