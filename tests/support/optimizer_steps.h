#pragma once

#include <gtest/gtest.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize.h>

#include <functional>
#include <memory>
#include <sstream>
#include <vector>

// Helpers of the optimizer tests: the same parameters and gradients for two optimizers.
namespace vit::testing {

// Copies of `parameters` that require gradients, for a second optimizer.
inline std::vector<torch::Tensor> copies(const std::vector<torch::Tensor>& parameters) {
  std::vector<torch::Tensor> result;
  for (const auto& parameter : parameters) result.push_back(parameter.detach().clone().requires_grad_());
  return result;
}

// Steps first .. first + steps - 1 of `optimizer`, each with gradients drawn from seed 100 + step (the
// same for every optimizer).
inline void take_steps(torch::optim::Optimizer& optimizer, const std::vector<torch::Tensor>& parameters, int first,
                       int steps) {
  for (int step = first; step < first + steps; ++step) {
    torch::manual_seed(100 + step);
    for (const auto& parameter : parameters) parameter.mutable_grad() = torch::randn_like(parameter) * 0.1;
    optimizer.step();
  }
}

// The same tensors bit for bit, undefined where the other is.
inline void expect_equal(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].defined(), b[i].defined()) << "tensor " << i;
    if (a[i].defined()) {
      EXPECT_TRUE(torch::equal(a[i], b[i])) << "tensor " << i;
    }
  }
}

// Builds vit's optimizer (true) or LibTorch's (false) over the parameters.
using MakeOptimizer =
    std::function<std::unique_ptr<torch::optim::Optimizer>(const std::vector<torch::Tensor>&, bool vits)>;

// Copies of `start` after steps 0-2 of one optimizer (vit's first, or LibTorch's), whose state LibTorch's
// save writes and the other optimizer's load reads, and steps 3-5 of that other one.
inline std::vector<torch::Tensor> steps_across_a_save(const std::vector<torch::Tensor>& start, bool vits_first,
                                                      const MakeOptimizer& make) {
  const auto first_parameters = copies(start);
  const auto first = make(first_parameters, vits_first);
  take_steps(*first, first_parameters, 0, 3);
  torch::serialize::OutputArchive saved;
  first->save(saved);
  std::ostringstream bytes;
  saved.save_to(bytes);
  const auto second_parameters = copies(first_parameters);
  const auto second = make(second_parameters, !vits_first);
  torch::serialize::InputArchive loaded;
  std::istringstream input(bytes.str());
  loaded.load_from(input);
  second->load(loaded);
  take_steps(*second, second_parameters, 3, 3);
  return second_parameters;
}

}  // namespace vit::testing
