#include "app/train/ema.h"

#include <algorithm>
#include <vector>

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

void ModelEma::update(models::ImageModel& model, const BatchShards& shards) {
  torch::NoGradGuard no_grad;
  auto averaged = ema_->parameters();
  const auto current = model->parameters();
  if (!std::all_of(averaged.begin(), averaged.end(), is_plain_cpu) ||
      !std::all_of(current.begin(), current.end(), is_plain_cpu)) {
    // Two multi-tensor kernels for the whole model instead of two per parameter.
    torch::_foreach_mul_(averaged, decay_);
    torch::_foreach_add_(averaged, current, 1.0 - decay_);
    return;
  }
  std::vector<torch::Tensor> averaged_elements, current_elements;
  for (size_t i = 0; i < averaged.size(); ++i) {
    averaged_elements.push_back(averaged[i].view(-1));
    current_elements.push_back(current[i].view(-1));
  }
  shards.run_over_rows(averaged_elements, [&](size_t k, int64_t begin, int64_t end) {
    rows_of(averaged_elements[k], begin, end).mul_(decay_).add_(rows_of(current_elements[k], begin, end), 1.0 - decay_);
  });
}

}  // namespace vit::app
