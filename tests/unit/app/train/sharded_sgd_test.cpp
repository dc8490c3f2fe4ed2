#include "app/train/sharded_sgd.h"

#include "support/optimizer_steps.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <memory>
#include <vector>

namespace vit::app {
namespace {

using torch::optim::OptimizerParamGroup;
using torch::optim::SGDOptions;
using vit::testing::copies;
using vit::testing::expect_equal;
using vit::testing::take_steps;

// 1.2 M elements, three shares of the workers' passes; rows of 7 and tails around the vectors.
std::vector<torch::Tensor> sgd_parameters() {
  torch::manual_seed(0);
  return {torch::randn({1000, 1100}).requires_grad_(), torch::randn({37}).requires_grad_(),
          torch::randn({3, 5, 7}).requires_grad_(), torch::randn({}).requires_grad_()};
}

// Two groups, as make_optimizer builds them (decayed and not), with `options` and a twin without decay.
std::vector<OptimizerParamGroup> groups_of(const std::vector<torch::Tensor>& parameters, const SGDOptions& options) {
  std::vector<OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>(parameters.begin(), parameters.begin() + 2),
                      std::make_unique<SGDOptions>(options));
  groups.emplace_back(std::vector<torch::Tensor>(parameters.begin() + 2, parameters.end()),
                      std::make_unique<SGDOptions>(SGDOptions(options).weight_decay(0.0)));
  return groups;
}

TEST(ShardedSgd, LibTorchsStepBitForBitOnTheWorkers) {
  const vit::testing::IntraOpThreads one_thread(1);
  for (const auto& options : {SGDOptions(0.1).momentum(0.9).weight_decay(0.05), SGDOptions(0.1),
                              SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(0.01),
                              SGDOptions(0.1).momentum(0.8).dampening(0.1)}) {
    const auto parameters = sgd_parameters();
    const auto reference_parameters = copies(parameters);
    ShardedSgd sharded(groups_of(parameters, options), SGDOptions(0.1), BatchShards(3));
    torch::optim::SGD reference(groups_of(reference_parameters, options), SGDOptions(0.1));
    take_steps(sharded, parameters, 0, 3);
    take_steps(reference, reference_parameters, 0, 3);
    expect_equal(parameters, reference_parameters);
  }
}

TEST(ShardedSgd, SavedStatesLoadInEitherOptimizer) {
  // Sharded for 3 steps, saved, loaded into LibTorch's SGD for 3 more; and the other way round.
  const auto options = SGDOptions(0.1).momentum(0.9).weight_decay(0.05);
  const auto make = [&](const std::vector<torch::Tensor>& parameters,
                        bool vits) -> std::unique_ptr<torch::optim::Optimizer> {
    if (vits) return std::make_unique<ShardedSgd>(groups_of(parameters, options), SGDOptions(0.1), BatchShards(2));
    return std::make_unique<torch::optim::SGD>(groups_of(parameters, options), SGDOptions(0.1));
  };
  for (const bool sharded_first : {true, false}) {
    const auto start = sgd_parameters();
    const auto reference_parameters = copies(start);
    torch::optim::SGD reference(groups_of(reference_parameters, options), SGDOptions(0.1));
    take_steps(reference, reference_parameters, 0, 6);
    expect_equal(vit::testing::steps_across_a_save(start, sharded_first, make), reference_parameters);
  }
}

TEST(ShardedSgd, OtherTensorsTakeLibTorchsStep) {
  // A non-contiguous gradient: LibTorch's step for all, the same numbers.
  const auto parameters = sgd_parameters();
  const auto reference_parameters = copies(parameters);
  const auto options = SGDOptions(0.1).momentum(0.9);
  ShardedSgd sharded(groups_of(parameters, options), SGDOptions(0.1), BatchShards(2));
  torch::optim::SGD reference(groups_of(reference_parameters, options), SGDOptions(0.1));
  for (auto* set : {&parameters, &reference_parameters}) {
    for (auto& parameter : *set) parameter.mutable_grad() = torch::ones_like(parameter) * 0.1;
    (*set)[0].mutable_grad() = torch::ones({1100, 1000}).t() * 0.1;
  }
  sharded.step();
  reference.step();
  expect_equal(parameters, reference_parameters);
}

}  // namespace
}  // namespace vit::app
