#include "app/train/ema.h"

namespace vit::app {

void copy_weights(models::ImageModel& from, models::ImageModel& to) {
  torch::NoGradGuard no_grad;
  const auto source = from->named_parameters();
  for (auto& item : to->named_parameters()) item.value().copy_(source[item.key()]);
  const auto buffers = from->named_buffers();
  for (auto& item : to->named_buffers()) item.value().copy_(buffers[item.key()]);
}

ModelEma::ModelEma(models::ImageModel& model, models::ImageModel average, double decay)
    : decay_(decay), ema_(std::move(average)) {
  ema_->to(model->parameters().front().device());
  copy_weights(model, ema_);
  ema_->eval();
  for (auto& parameter : ema_->parameters()) parameter.set_requires_grad(false);
}

void ModelEma::update(models::ImageModel& model) {
  torch::NoGradGuard no_grad;
  // Two multi-tensor kernels for the whole model instead of two per parameter.
  auto averaged = ema_->parameters();
  torch::_foreach_mul_(averaged, decay_);
  torch::_foreach_add_(averaged, model->parameters(), 1.0 - decay_);
}

}  // namespace vit::app
