#include "models/layers/linear.h"

#include "models/kernels/autocast_state.h"

#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

namespace vit::models {
namespace {

TEST(Linear, HasTorchsParametersAndFp32Outputs) {
  torch::manual_seed(1);
  Linear ours(24, 40);
  torch::manual_seed(1);
  torch::nn::Linear theirs(24, 40);
  const auto names = ours->named_parameters().keys();
  EXPECT_EQ(names, (std::vector<std::string>{"weight", "bias"}));
  EXPECT_TRUE(torch::equal(ours->weight, theirs->weight));
  EXPECT_TRUE(torch::equal(ours->bias, theirs->bias));
  for (const auto& x : {torch::randn({5, 24}), torch::randn({3, 7, 24}), torch::randn({7, 3, 24}).transpose(0, 1)}) {
    EXPECT_TRUE(torch::equal(ours(x), theirs(x))) << x.sizes();
  }
}

TEST(Linear, UnderBf16AutocastAddsItsBiasInBf16LikeTorchLinear) {
  torch::manual_seed(2);
  Linear linear(24, 40);
  const auto x = torch::randn({3, 7, 24});
  // Through the project's shim: LibTorch 2.4 renamed the CPU autocast setters.
  const auto previous_dtype = autocast_dtype(c10::kCPU);
  set_autocast_dtype(c10::kCPU, torch::kBFloat16);
  set_autocast_enabled(c10::kCPU, true);
  const auto y = linear(x);
  const auto torch_nn_y = static_cast<torch::nn::LinearImpl&>(*linear).forward(x);
  set_autocast_enabled(c10::kCPU, false);
  set_autocast_dtype(c10::kCPU, previous_dtype);
  at::autocast::clear_cache();

  const auto bf16 = [](const torch::Tensor& t) { return t.to(torch::kBFloat16); };
  EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(y, torch::linear(bf16(x), bf16(linear->weight), bf16(linear->bias))));
  // torch::nn::Linear's forward adds the fp32 bias to the bf16 product instead: other numbers.
  EXPECT_FALSE(torch::equal(y, torch_nn_y));
}

}  // namespace
}  // namespace vit::models
