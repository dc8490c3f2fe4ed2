#include "app/train/loss_scaler.h"

#include "support/test_support.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

namespace vit::testing {
namespace {

// LibTorch 1.x has the scaler's ops (those of torch.cuda.amp.GradScaler) for CUDA only, the one
// place fp16 training runs; scripts/gpu_check.sh runs this where a GPU is.
TEST(LossScalerOnDevice, UnscalesSkipsOverflowsAndAdaptsTheScale) {
  const auto cuda = test_device();
  if (!cuda.is_cuda()) GTEST_SKIP() << "fp16 loss scaling runs on CUDA only (VIT_TEST_DEVICE=cuda)";
  app::LossScaler scaler(true, cuda, 1024.0, /*growth_interval=*/2);
  auto weight = torch::ones({3}, torch::TensorOptions(cuda).requires_grad(true));
  scaler.scale((weight * 2.0).sum()).backward();
  EXPECT_TRUE(torch::allclose(weight.grad(), torch::full({3}, 2048.0, cuda)));
  EXPECT_TRUE(scaler.unscale({weight}));
  EXPECT_TRUE(torch::allclose(weight.grad(), torch::full({3}, 2.0, cuda)));
  scaler.update();
  EXPECT_EQ(scaler.state()[0].item<double>(), 1024.0);  // one clean step of two
  scaler.update();
  EXPECT_EQ(scaler.state()[0].item<double>(), 2048.0);

  weight.grad().fill_(std::numeric_limits<float>::infinity());
  EXPECT_FALSE(scaler.unscale({weight}));
  scaler.update();
  EXPECT_EQ(scaler.state()[0].item<double>(), 1024.0);
  EXPECT_EQ(scaler.state()[1].item<double>(), 0.0);

  app::LossScaler restored(true, cuda);
  restored.load_state(scaler.state());
  EXPECT_TRUE(torch::equal(restored.state(), scaler.state()));
}

TEST(LossScaler, DisabledItLeavesLossAndGradientsAlone) {
  app::LossScaler scaler(false, torch::kCPU);
  const auto loss = torch::tensor(3.0);
  EXPECT_TRUE(torch::equal(scaler.scale(loss), loss));
  auto weight = torch::ones({2}, torch::requires_grad());
  (weight * std::numeric_limits<float>::infinity()).sum().backward();
  EXPECT_TRUE(scaler.unscale({weight}));
  scaler.update();
}

}  // namespace
}  // namespace vit::testing
