#include "app/train/fused_adamw.h"

#include "support/optimizer_steps.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace vit::app {
namespace {

using torch::optim::AdamWOptions;
using torch::optim::OptimizerParamGroup;
using vit::testing::copies;
using vit::testing::expect_equal;
using vit::testing::take_steps;

// Sizes around the 8-float vectors (tails of 1 to 7) and one of many vectors.
const std::vector<int64_t> kSizes = {1, 7, 8, 19, 64, 1003};

std::vector<torch::Tensor> fresh_parameters(torch::Dtype dtype = torch::kFloat32) {
  torch::manual_seed(0);
  std::vector<torch::Tensor> parameters;
  for (const int64_t size : kSizes) parameters.push_back(torch::randn({size}, dtype).requires_grad_());
  return parameters;
}

// Two groups as make_optimizer builds them: decayed weights, and the rest at another learning rate.
std::vector<OptimizerParamGroup> groups_of(const std::vector<torch::Tensor>& parameters, bool amsgrad = false) {
  const std::vector<torch::Tensor> decayed(parameters.begin(), parameters.begin() + 3);
  const std::vector<torch::Tensor> other(parameters.begin() + 3, parameters.end());
  std::vector<OptimizerParamGroup> groups;
  groups.emplace_back(decayed, std::make_unique<AdamWOptions>(
                                   AdamWOptions(3e-3).betas({0.9, 0.95}).weight_decay(0.05).amsgrad(amsgrad)));
  groups.emplace_back(other, std::make_unique<AdamWOptions>(AdamWOptions(1e-3).weight_decay(0.0).amsgrad(amsgrad)));
  return groups;
}

void expect_close(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::allclose(a[i], b[i], 1e-6, 1e-7))
        << "parameter " << i << ": max difference " << (a[i] - b[i]).abs().max().item<double>();
  }
}

TEST(FusedAdamW, FollowsLibTorchsAdamW) {
  const auto fused_parameters = fresh_parameters();
  const auto reference_parameters = copies(fused_parameters);
  FusedAdamW fused(groups_of(fused_parameters), AdamWOptions(), BatchShards());
  torch::optim::AdamW reference(groups_of(reference_parameters));
  take_steps(fused, fused_parameters, 0, 20);
  take_steps(reference, reference_parameters, 0, 20);
  expect_close(fused_parameters, reference_parameters);
  // The parameters moved: 20 steps of about lr = 1e-3 each, of random sign.
  EXPECT_GT((fused_parameters[5] - fresh_parameters()[5]).abs().mean().item<double>(), 2e-3);
}

TEST(FusedAdamW, AClosureRunsFirstAndItsLossIsReturned) {
  // The closure computes the gradients, as LibTorch's optimizers allow: the step must see them.
  const auto fused_parameters = fresh_parameters();
  const auto reference_parameters = copies(fused_parameters);
  FusedAdamW fused(groups_of(fused_parameters), AdamWOptions(), BatchShards());
  torch::optim::AdamW reference(groups_of(reference_parameters));
  const auto closure_of = [](const std::vector<torch::Tensor>& parameters) {
    return [&parameters] {
      auto loss = torch::zeros({});
      for (const auto& parameter : parameters) loss = loss + parameter.square().sum();
      for (const auto& parameter : parameters) parameter.mutable_grad() = torch::Tensor();
      loss.backward();
      return loss;
    };
  };
  const auto fused_loss = fused.step(closure_of(fused_parameters));
  const auto reference_loss = reference.step(closure_of(reference_parameters));
  EXPECT_TRUE(torch::equal(fused_loss, reference_loss));
  expect_close(fused_parameters, reference_parameters);
  EXPECT_FALSE(torch::equal(fused_parameters[5], fresh_parameters()[5]));  // the step was taken
}

TEST(FusedAdamW, TheSameBitsOnAnyNumberOfThreadsWithOrWithoutVectors) {
  const int previous_threads = at::get_num_threads();
  at::set_num_threads(2);
  const auto whole = fresh_parameters();
  const auto sliced = copies(whole);
  FusedAdamW on_caller(groups_of(whole), AdamWOptions(), BatchShards());
  FusedAdamW on_three_slices(groups_of(sliced), AdamWOptions(), BatchShards(3));
  take_steps(on_caller, whole, 0, 5);
  take_steps(on_three_slices, sliced, 0, 5);
  at::set_num_threads(previous_threads);
  expect_equal(whole, sliced);

  torch::manual_seed(1);
  const int64_t size = 1003;
  const auto grad = torch::randn({size});
  std::vector<torch::Tensor> vectorized{torch::randn({size}), torch::rand({size}), torch::rand({size}) * 1e-3};
  std::vector<torch::Tensor> portable{vectorized[0].clone(), vectorized[1].clone(), vectorized[2].clone()};
  const auto elements_of = [&](std::vector<torch::Tensor>& state) {
    return AdamWElements{state[0].data_ptr<float>(),
                         grad.data_ptr<float>(),
                         state[1].data_ptr<float>(),
                         state[2].data_ptr<float>(),
                         0.99995f,
                         0.9f,
                         0.1f,
                         0.999f,
                         0.001f,
                         0.0447f,
                         1e-8f,
                         -0.01f};
  };
  update_adamw_elements(elements_of(vectorized), 0, size);
  update_adamw_elements(elements_of(portable), 0, size, /*portable=*/true);
  expect_equal(vectorized, portable);
}

TEST(FusedAdamW, SavedStatesLoadInEitherOptimizer) {
  // Fused for 3 steps, saved, loaded into LibTorch's AdamW for 3 more; and the other way round.
  const auto make = [](const std::vector<torch::Tensor>& parameters,
                       bool vits) -> std::unique_ptr<torch::optim::Optimizer> {
    if (vits) return std::make_unique<FusedAdamW>(groups_of(parameters), AdamWOptions(), BatchShards());
    return std::make_unique<torch::optim::AdamW>(groups_of(parameters));
  };
  for (const bool fused_first : {true, false}) {
    const auto start = fresh_parameters();
    const auto reference_parameters = copies(start);
    torch::optim::AdamW reference(groups_of(reference_parameters));
    take_steps(reference, reference_parameters, 0, 6);
    expect_close(vit::testing::steps_across_a_save(start, fused_first, make), reference_parameters);
  }
}

TEST(FusedAdamW, OtherTensorsAndAmsgradTakeLibTorchsStep) {
  for (const bool amsgrad : {false, true}) {
    // float64 parameters, or amsgrad: LibTorch's own step, bit for bit.
    const auto fused_parameters = fresh_parameters(amsgrad ? torch::kFloat32 : torch::kFloat64);
    const auto reference_parameters = copies(fused_parameters);
    FusedAdamW fused(groups_of(fused_parameters, amsgrad), AdamWOptions(), BatchShards());
    torch::optim::AdamW reference(groups_of(reference_parameters, amsgrad));
    take_steps(fused, fused_parameters, 0, 4);
    take_steps(reference, reference_parameters, 0, 4);
    expect_equal(fused_parameters, reference_parameters);
  }
}

}  // namespace
}  // namespace vit::app
