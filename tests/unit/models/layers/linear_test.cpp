#include "models/layers/linear.h"

#include "models/kernels/autocast_state.h"
#include "support/test_support.h"

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

// bf16 autocast, and on CUDA fp16 autocast too.
TEST(LinearOnDevice, UnderAutocastAddsItsBiasInTheLowPrecisionLikeTorchLinear) {
  const auto device = vit::testing::test_device();
  std::vector<torch::ScalarType> dtypes{torch::kBFloat16};
  if (device.is_cuda()) dtypes.push_back(torch::kHalf);
  for (const auto dtype : dtypes) {
    torch::manual_seed(2);
    Linear linear(24, 40);
    linear->to(device);
    const auto x = torch::randn({3, 7, 24}, device);
    // Through the project's shim: LibTorch 2.4 renamed the autocast setters.
    const auto previous_dtype = autocast_dtype(device.type());
    set_autocast_dtype(device.type(), dtype);
    set_autocast_enabled(device.type(), true);
    const auto y = linear(x);
    const auto torch_nn_y = static_cast<torch::nn::LinearImpl&>(*linear).forward(x);
    set_autocast_enabled(device.type(), false);
    set_autocast_dtype(device.type(), previous_dtype);
    at::autocast::clear_cache();

    const auto low = [dtype](const torch::Tensor& t) { return t.to(dtype); };
    EXPECT_EQ(y.scalar_type(), dtype);
    EXPECT_TRUE(torch::equal(y, torch::linear(low(x), low(linear->weight), low(linear->bias)))) << dtype;
    // torch::nn::Linear's forward adds the fp32 bias to the low-precision product instead: other numbers.
    EXPECT_FALSE(torch::equal(y.to(torch::kFloat32), torch_nn_y.to(torch::kFloat32))) << dtype;
  }
}

// LibTorch 1.13's linear multiplies a [B, H, W, C] input and then adds the bias, which in bf16
// rounds twice; Linear flattens it so that the bias goes into the product.
TEST(Linear, FoldsTheBiasIntoTheProductForInputsOfMoreThanThreeDimensions) {
  torch::manual_seed(3);
  Linear linear(24, 40);
  // bf16 values, so that only the products and the bias add round.
  const auto x = torch::randn({2, 3, 5, 24}).to(torch::kBFloat16).to(torch::kFloat32);
  EXPECT_TRUE(torch::equal(linear(x), linear(x.flatten(0, -2)).view({2, 3, 5, 40})));
  set_autocast_dtype(c10::kCPU, torch::kBFloat16);
  set_autocast_enabled(c10::kCPU, true);
  const auto y = linear(x);
  const auto flat = linear(x.flatten(0, -2));
  const auto two_passes = torch::linear(x, linear->weight, linear->bias);
  set_autocast_enabled(c10::kCPU, false);
  at::autocast::clear_cache();
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 3, 5, 40}));
  EXPECT_TRUE(torch::equal(y, flat.view({2, 3, 5, 40})));
  const auto exact = torch::linear(x.to(torch::kFloat64), linear->weight.to(torch::kBFloat16).to(torch::kFloat64),
                                   linear->bias.to(torch::kBFloat16).to(torch::kFloat64));
  EXPECT_LT(vit::testing::relative_error(y, exact), vit::testing::relative_error(two_passes, exact));
}

}  // namespace
}  // namespace vit::models
