#include "app/train/optimization.h"

#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include <cmath>

namespace vit::app {
namespace {

// With a backbone lr scale the head's parameters get groups of their own after the backbone's
// two, and set_learning_rate scales the first two.
constexpr size_t kBackboneGroups = 2;

bool separate_head(const TrainConfig& train) { return train.backbone_lr_scale != 1.0; }

}  // namespace

std::unique_ptr<torch::optim::Optimizer> make_optimizer(models::ImageModel& model, const TrainConfig& train) {
  std::vector<torch::Tensor> decay;
  std::vector<torch::Tensor> no_decay;
  std::vector<torch::Tensor> head_decay;
  std::vector<torch::Tensor> head_no_decay;
  for (const auto& item : model->named_parameters()) {
    if (!item.value().requires_grad()) continue;
    const bool head = separate_head(train) && model->in_head(item.key());
    const bool decayed = model->decays(item.key(), item.value());
    (head ? (decayed ? head_decay : head_no_decay) : (decayed ? decay : no_decay)).push_back(item.value());
  }
  // The groups in the order set_learning_rate expects, each with the optimizer's options.
  const auto grouped = [&](const auto& options) {
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(decay, options(train.weight_decay));
    groups.emplace_back(no_decay, options(0.0));
    if (separate_head(train)) {
      groups.emplace_back(head_decay, options(train.weight_decay));
      groups.emplace_back(head_no_decay, options(0.0));
    }
    return groups;
  };
  if (train.optimizer == OptimizerKind::AdamW) {
    const auto groups = grouped([&](double weight_decay) {
      return std::make_unique<torch::optim::AdamWOptions>(
          torch::optim::AdamWOptions(train.lr).betas({train.beta1, train.beta2}).weight_decay(weight_decay));
    });
    return std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(train.lr));
  }
  const auto groups = grouped([&](double weight_decay) {
    return std::make_unique<torch::optim::SGDOptions>(
        torch::optim::SGDOptions(train.lr).momentum(train.momentum).weight_decay(weight_decay));
  });
  return std::make_unique<torch::optim::SGD>(groups, torch::optim::SGDOptions(train.lr));
}

LrSchedule::LrSchedule(const TrainConfig& train, int64_t steps_per_epoch)
    : train_(train), steps_per_epoch_(std::max<int64_t>(1, steps_per_epoch)) {
  warmup_steps_ =
      std::max(train.warmup_steps,
               static_cast<int64_t>(std::llround(train.warmup_epochs * static_cast<double>(steps_per_epoch_))));
  total_steps_ = train.epochs * steps_per_epoch_;
  if (train.max_steps > 0) total_steps_ = std::min(total_steps_, train.max_steps);
}

double LrSchedule::at(int64_t step) const {
  if (step < warmup_steps_) return train_.lr * static_cast<double>(step + 1) / static_cast<double>(warmup_steps_);
  switch (train_.schedule) {
    case ScheduleKind::Constant:
      return train_.lr;
    case ScheduleKind::Step: {
      const double epoch = static_cast<double>(step) / static_cast<double>(steps_per_epoch_);
      return std::max(train_.min_lr, train_.lr * std::pow(train_.decay_rate, std::floor(epoch / train_.decay_epochs)));
    }
    case ScheduleKind::Cosine: {
      const double span = static_cast<double>(std::max<int64_t>(1, total_steps_ - warmup_steps_));
      const double progress = std::min(1.0, static_cast<double>(step - warmup_steps_) / span);
      return train_.min_lr + 0.5 * (train_.lr - train_.min_lr) * (1.0 + std::cos(M_PI * progress));
    }
  }
  return train_.lr;
}

void clip_gradient_norm(const std::vector<torch::Tensor>& parameters, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> norms;
  for (const auto& parameter : parameters) {
    if (parameter.grad().defined()) norms.push_back(parameter.grad().norm());
  }
  if (norms.empty()) return;
  const auto coefficient = (max_norm / (torch::stack(norms).norm() + 1e-6)).clamp_max(1.0);
  std::vector<torch::Tensor> gradients;
  for (const auto& parameter : parameters) {
    if (parameter.grad().defined()) gradients.push_back(parameter.grad());
  }
  if (coefficient.is_cpu()) {
    // On the CPU reading the coefficient waits for nothing, and most steps need no scaling.
    const double scale = coefficient.item<double>();
    if (scale < 1.0) torch::_foreach_mul_(gradients, scale);
    return;
  }
  // On a GPU the step must not wait for the device: every gradient is scaled by the tensor
  // (by exactly 1 when the norm is within bounds).
  for (auto& gradient : gradients) gradient.mul_(coefficient);
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr, double backbone_lr_scale) {
  auto& groups = optimizer.param_groups();
  const bool scaled = groups.size() > kBackboneGroups;
  for (size_t i = 0; i < groups.size(); ++i) {
    groups[i].options().set_lr(scaled && i < kBackboneGroups ? lr * backbone_lr_scale : lr);
  }
}

}  // namespace vit::app
