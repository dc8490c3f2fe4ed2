#include "app/io/checkpoint.h"
#include "app/train/fused_adamw.h"
#include "app/train/optimizer_state_key.h"
#include "app/train/sharded_sgd.h"
#include "support/optimizer_steps.h"

#include <gtest/gtest.h>
#include <torch/optim/sgd.h>
#include <torch/serialize.h>

#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace vit::app {
namespace {

using torch::optim::Optimizer;
using torch::optim::OptimizerParamGroup;
using vit::testing::copies;
using vit::testing::expect_equal;
using vit::testing::take_steps;

std::vector<torch::Tensor> fresh_parameters() {
  torch::manual_seed(7);
  std::vector<torch::Tensor> parameters;
  for (const int64_t size : {5, 8, 3, 16}) parameters.push_back(torch::randn({size}).requires_grad_());
  return parameters;
}

// AdamW (vit's FusedAdamW) or SGD with momentum (vit's ShardedSgd), the parameters in groups of `group_sizes`.
std::unique_ptr<Optimizer> optimizer_of(bool adamw, const std::vector<torch::Tensor>& parameters,
                                        const std::vector<size_t>& group_sizes = {2, 2}) {
  std::vector<OptimizerParamGroup> groups;
  size_t first = 0;
  for (const size_t size : group_sizes) {
    const std::vector<torch::Tensor> members(parameters.begin() + static_cast<std::ptrdiff_t>(first),
                                             parameters.begin() + static_cast<std::ptrdiff_t>(first + size));
    first += size;
    if (adamw) {
      groups.emplace_back(members, std::make_unique<torch::optim::AdamWOptions>(1e-2));
    } else {
      groups.emplace_back(members,
                          std::make_unique<torch::optim::SGDOptions>(torch::optim::SGDOptions(1e-2).momentum(0.9)));
    }
  }
  if (adamw) return std::make_unique<FusedAdamW>(std::move(groups), torch::optim::AdamWOptions(), BatchShards());
  return std::make_unique<ShardedSgd>(std::move(groups), torch::optim::SGDOptions(1e-2), BatchShards());
}

std::string bytes_of(const std::function<void(torch::serialize::OutputArchive&)>& save) {
  torch::serialize::OutputArchive archive;
  save(archive);
  std::ostringstream bytes;
  archive.save_to(bytes);
  return bytes.str();
}

void load(const std::string& bytes, Optimizer& optimizer) {
  torch::serialize::InputArchive archive;
  std::istringstream input(bytes);
  archive.load_from(input);
  load_optimizer_state(archive, optimizer);
}

// Each parameter's state, in the optimizer's order: AdamW's step and moments, SGD's momentum.
std::vector<torch::Tensor> states_of(const Optimizer& optimizer) {
  std::vector<torch::Tensor> states;
  for (const auto& group : optimizer.param_groups()) {
    for (const auto& parameter : group.params()) {
      const auto found = optimizer.state().find(optimizer_state_key(parameter));
      if (found == optimizer.state().end()) {
        states.emplace_back();
        continue;
      }
      if (const auto* adamw = dynamic_cast<const torch::optim::AdamWParamState*>(found->second.get())) {
        states.push_back(torch::tensor(adamw->step()));
        states.push_back(adamw->exp_avg());
        states.push_back(adamw->exp_avg_sq());
      } else {
        states.push_back(static_cast<const torch::optim::SGDParamState&>(*found->second).momentum_buffer());
      }
    }
  }
  return states;
}

// Both forms, LibTorch's own save (states named by their tensor's address) and vit's (by position),
// load every state into the parameter at its position, and the next step is the saved optimizer's.
TEST(OptimizerState, EitherFormLoadsEachStateIntoTheParameterAtItsPosition) {
  for (const bool adamw : {true, false}) {
    const auto parameters = fresh_parameters();
    const auto saved = optimizer_of(adamw, parameters);
    take_steps(*saved, parameters, 0, 3);
    const std::vector<std::string> forms = {bytes_of([&](auto& archive) { saved->save(archive); }),
                                            bytes_of([&](auto& archive) { save_optimizer_state(archive, *saved); })};
    for (size_t form = 0; form < forms.size(); ++form) {
      const auto label = ::testing::Message() << (adamw ? "AdamW" : "SGD") << ", form " << form;
      const auto loaded_parameters = copies(parameters);
      const auto loaded = optimizer_of(adamw, loaded_parameters);
      load(forms[form], *loaded);
      SCOPED_TRACE(label);
      expect_equal(states_of(*loaded), states_of(*saved));
      const auto continued = copies(parameters);
      const auto original = optimizer_of(adamw, continued);
      load(forms[1], *original);
      take_steps(*loaded, loaded_parameters, 3, 1);
      take_steps(*original, continued, 3, 1);
      for (size_t i = 0; i < parameters.size(); ++i) EXPECT_TRUE(torch::equal(loaded_parameters[i], continued[i]));
    }
  }
}

// Two optimizers in the same state over tensors at other addresses write the same bytes.
TEST(OptimizerState, TheSameStatesWriteTheSameBytes) {
  for (const bool adamw : {true, false}) {
    const auto first = fresh_parameters(), second = copies(first);
    const auto one = optimizer_of(adamw, first), other = optimizer_of(adamw, second);
    take_steps(*one, first, 0, 2);
    take_steps(*other, second, 0, 2);
    EXPECT_EQ(bytes_of([&](auto& archive) { save_optimizer_state(archive, *one); }),
              bytes_of([&](auto& archive) { save_optimizer_state(archive, *other); }))
        << (adamw ? "AdamW" : "SGD");
  }
}

TEST(OptimizerState, AnArchiveOfOtherGroupsIsRefused) {
  const auto parameters = fresh_parameters();
  const auto saved = optimizer_of(true, parameters);
  take_steps(*saved, parameters, 0, 1);
  const auto bytes = bytes_of([&](auto& archive) { save_optimizer_state(archive, *saved); });
  const auto one_group = optimizer_of(true, copies(parameters), {4});
  EXPECT_THROW(load(bytes, *one_group), c10::Error);
  const auto other_sizes = optimizer_of(true, copies(parameters), {1, 3});
  EXPECT_THROW(load(bytes, *other_sizes), c10::Error);
}

}  // namespace
}  // namespace vit::app
