#include "app/train/optimization.h"

#include "app/errors.h"
#include "app/train/fused_adamw.h"
#include "app/train/sharded_sgd.h"

#include <torch/optim/sgd.h>

#include <cmath>
#include <map>
#include <utility>

namespace vit::app {
namespace {

// Parameters in groups of one learning-rate scale and weight-decay choice: per scale, in the order
// of the scales' first parameters, the decayed group then the other (a run without scales has the
// two groups of earlier releases, whose saved optimizer states keep loading).
struct ParameterGroups {
  std::vector<double> scales;                       // per group
  std::vector<bool> decayed;                        // per group
  std::vector<std::vector<torch::Tensor>> members;  // per group
};

ParameterGroups group_parameters(models::ImageModel& model, const TrainConfig& train) {
  const int64_t layers = model->layer_count();
  if (train.layer_decay != 1.0 && layers == 0) {
    throw ConfigError("train.layer_decay: model.arch " + model->model_options().arch() +
                      " has no layers to decay the learning rate over");
  }
  ParameterGroups groups;
  std::map<std::pair<bool, int64_t>, size_t> first_group;  // (in head, layer) -> its decayed group
  for (const auto& item : model->named_parameters()) {
    if (!item.value().requires_grad()) continue;
    const bool head = train.backbone_lr_scale != 1.0 && model->in_head(item.key());
    const int64_t layer = train.layer_decay != 1.0 ? model->layer_of(item.key()) : layers;
    const auto key = std::make_pair(head, layer);
    auto found = first_group.find(key);
    if (found == first_group.end()) {
      const double scale =
          (head ? 1.0 : train.backbone_lr_scale) * std::pow(train.layer_decay, static_cast<double>(layers - layer));
      found = first_group.emplace(key, groups.scales.size()).first;
      for (const bool decayed : {true, false}) {
        groups.scales.push_back(scale);
        groups.decayed.push_back(decayed);
        groups.members.emplace_back();
      }
    }
    const bool decayed = model->decays(item.key(), item.value());
    groups.members[found->second + (decayed ? 0 : 1)].push_back(item.value());
  }
  return groups;
}

}  // namespace

std::vector<double> group_lr_scales(models::ImageModel& model, const TrainConfig& train) {
  return group_parameters(model, train).scales;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(models::ImageModel& model, const TrainConfig& train,
                                                        BatchShards shards) {
  const auto parameters = group_parameters(model, train);
  // The groups in group_lr_scales' order, each with the optimizer's options.
  const auto grouped = [&](const auto& options) {
    std::vector<torch::optim::OptimizerParamGroup> groups;
    for (size_t i = 0; i < parameters.members.size(); ++i) {
      groups.emplace_back(parameters.members[i], options(parameters.decayed[i] ? train.weight_decay : 0.0));
    }
    return groups;
  };
  if (train.optimizer == OptimizerKind::AdamW) {
    const auto groups = grouped([&](double weight_decay) {
      return std::make_unique<torch::optim::AdamWOptions>(
          torch::optim::AdamWOptions(train.lr).betas({train.beta1, train.beta2}).weight_decay(weight_decay));
    });
    return std::make_unique<FusedAdamW>(groups, torch::optim::AdamWOptions(train.lr), std::move(shards));
  }
  const auto groups = grouped([&](double weight_decay) {
    return std::make_unique<torch::optim::SGDOptions>(
        torch::optim::SGDOptions(train.lr).momentum(train.momentum).weight_decay(weight_decay));
  });
  return std::make_unique<ShardedSgd>(groups, torch::optim::SGDOptions(train.lr), std::move(shards));
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

void clip_gradient_norm(const std::vector<torch::Tensor>& parameters, double max_norm, const BatchShards& shards) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> gradients;
  for (const auto& parameter : parameters) {
    if (parameter.grad().defined()) gradients.push_back(parameter.grad());
  }
  if (gradients.empty()) return;
  std::vector<torch::Tensor> norms(gradients.size());
  shards.run_over_tensors(gradients, [&](size_t k) { norms[k] = gradients[k].norm(); });
  const auto coefficient = (max_norm / (torch::stack(norms).norm() + 1e-6)).clamp_max(1.0);
  if (!coefficient.is_cpu()) {
    // On a GPU the step must not wait for the device: every gradient is scaled by the tensor
    // (by exactly 1 when the norm is within bounds).
    for (auto& gradient : gradients) gradient.mul_(coefficient);
    return;
  }
  // On the CPU reading the coefficient waits for nothing, and most steps need no scaling.
  const double scale = coefficient.item<double>();
  if (scale >= 1.0) return;
  shards.run_over_rows(gradients,
                       [&](size_t k, int64_t begin, int64_t end) { rows_of(gradients[k], begin, end).mul_(scale); });
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr, const std::vector<double>& group_scales) {
  auto& groups = optimizer.param_groups();
  for (size_t i = 0; i < groups.size(); ++i) groups[i].options().set_lr(lr * group_scales.at(i));
}

}  // namespace vit::app
