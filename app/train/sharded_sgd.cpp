#include "app/train/sharded_sgd.h"

#include "app/train/loss_closure.h"
#include "app/train/optimizer_state_key.h"

#include <utility>

namespace vit::app {

ShardedSgd::ShardedSgd(std::vector<torch::optim::OptimizerParamGroup> groups, torch::optim::SGDOptions defaults,
                       BatchShards shards)
    : torch::optim::SGD(std::move(groups), std::move(defaults)), shards_(std::move(shards)) {}

torch::Tensor ShardedSgd::step(LossClosure closure) {
  const auto loss = evaluate_loss_closure(closure);
  // Decided for the whole optimizer before any state changes, as FusedAdamW does.
  const auto libtorch_step = [&] {
    torch::optim::SGD::step();
    return loss;
  };
  struct Update {
    const torch::optim::SGDOptions* options;
    torch::Tensor parameter;
    torch::Tensor momentum_buffer;  // undefined on the first step with momentum
  };
  std::vector<Update> updates;
  for (const auto& group : param_groups_) {
    const auto& options = static_cast<const torch::optim::SGDOptions&>(group.options());
    for (const auto& parameter : group.params()) {
      if (!parameter.grad().defined()) continue;
      if (!is_plain_cpu(parameter) || !is_plain_cpu(parameter.grad()) ||
          parameter.grad().scalar_type() != parameter.scalar_type()) {
        return libtorch_step();
      }
      Update update{&options, parameter, {}};
      const auto found = options.momentum() != 0 ? state_.find(optimizer_state_key(parameter)) : state_.end();
      if (found != state_.end()) {
        update.momentum_buffer = static_cast<torch::optim::SGDParamState&>(*found->second).momentum_buffer();
        if (!is_plain_cpu(update.momentum_buffer) || update.momentum_buffer.sizes() != parameter.sizes()) {
          return libtorch_step();
        }
      }
      updates.push_back(std::move(update));
    }
  }

  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> elements;  // each parameter's elements, a tensor of one dimension
  std::vector<bool> fresh_buffers;      // the first step with momentum: the buffer takes the direction
  for (auto& update : updates) {
    elements.push_back(update.parameter.view(-1));
    fresh_buffers.push_back(update.options->momentum() != 0 && !update.momentum_buffer.defined());
    if (!fresh_buffers.back()) continue;
    auto state = std::make_unique<torch::optim::SGDParamState>();
    state->momentum_buffer(torch::empty_like(update.parameter, at::MemoryFormat::Contiguous));
    update.momentum_buffer = state->momentum_buffer();
    state_[optimizer_state_key(update.parameter)] = std::move(state);
  }
  shards_.run_over_rows(elements, [&](size_t k, int64_t begin, int64_t end) {
    const auto& [options, parameter, momentum_buffer] = updates[k];
    auto value = rows_of(elements[k], begin, end);
    auto direction = rows_of(parameter.grad().view(-1), begin, end);
    if (options->weight_decay() != 0) direction = direction.add(value, options->weight_decay());
    if (options->momentum() != 0) {
      auto buffer = rows_of(momentum_buffer.view(-1), begin, end);
      if (fresh_buffers[k]) {
        buffer.copy_(direction);
      } else {
        buffer.mul_(options->momentum()).add_(direction, 1 - options->dampening());
      }
      direction = options->nesterov() ? direction.add(buffer, options->momentum()) : buffer;
    }
    value.add_(direction, -1 * options->lr());
  });
  return loss;
}

}  // namespace vit::app
