#include "models/kernels/softmax.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

namespace vit::models {
namespace {

// Row lengths around the 8-float chunks: shorter than one, whole chunks, and overlapping tails.
const int64_t kSoftmaxRowLengths[] = {1, 3, 7, 8, 9, 16, 17, 49, 50, 197};

torch::Tensor exact_softmax(const torch::Tensor& x, double scale) {
  return (x.to(torch::kFloat64) * scale).softmax(-1);
}

TEST(ScaledSoftmax, Fp32EqualsTheFloat64SoftmaxOfTheScaledScoresAndItsGradient) {
  torch::manual_seed(21);
  for (const int64_t n : kSoftmaxRowLengths) {
    for (const double scale : {1.0, 0.125}) {
      const auto values = 4.0 * torch::randn({3, 5, n});
      const auto x = values.clone().requires_grad_();
      const auto x64 = values.to(torch::kFloat64).requires_grad_();
      const auto y = scaled_softmax(x, scale);
      const auto expected = exact_softmax(x64, scale);
      ASSERT_EQ(y.scalar_type(), torch::kFloat32);
      EXPECT_TRUE(torch::allclose(y.to(torch::kFloat64), expected, 1e-6, 1e-7)) << "n " << n << " scale " << scale;

      const auto upstream = torch::randn({3, 5, n}, torch::kFloat64);
      (y * upstream.to(torch::kFloat32)).sum().backward();
      (expected * upstream).sum().backward();
      EXPECT_TRUE(torch::allclose(x.grad().to(torch::kFloat64), x64.grad(), 1e-5, 1e-6))
          << "n " << n << " scale " << scale;
    }
  }
}

TEST(ScaledSoftmax, Bf16IsTheExactSoftmaxRoundedOnceAndSoIsItsGradient) {
  torch::manual_seed(22);
  for (const int64_t n : kSoftmaxRowLengths) {
    const double scale = 0.25;
    const auto values = (4.0 * torch::randn({4, 3, n})).to(torch::kBFloat16);
    const auto x = values.clone().requires_grad_();
    const auto y = scaled_softmax(x, scale);
    const auto expected = exact_softmax(values, scale);
    ASSERT_EQ(y.scalar_type(), torch::kBFloat16);
    // One rounding to bf16 (8 significant bits) of a value computed in fp32.
    EXPECT_TRUE(torch::allclose(y.to(torch::kFloat64), expected, 1.0 / 256, 1e-6)) << "n " << n;

    // The gradient from the saved bf16 weights y and the bf16 gradient g, scale · y ⊙ (g − Σ g ⊙ y),
    // computed in fp32 and rounded once.
    const auto upstream = torch::randn({4, 3, n}).to(torch::kBFloat16);
    torch::autograd::backward({y}, {upstream});
    const auto y64 = y.detach().to(torch::kFloat64), g64 = upstream.to(torch::kFloat64);
    const auto expected_grad = scale * y64 * (g64 - (g64 * y64).sum(-1, true));
    EXPECT_TRUE(torch::allclose(x.grad().to(torch::kFloat64), expected_grad, 1.0 / 256, 1e-6)) << "n " << n;
  }
}

TEST(ScaledSoftmax, GivesMaskedScoresExactlyZeroWeightAndSurvivesLargeScores) {
  const double inf = std::numeric_limits<double>::infinity();
  for (const int64_t n : {5, 12, 50}) {
    auto x = torch::randn({2, n});
    x.index_put_({0, torch::indexing::Slice(0, torch::indexing::None, 2)}, -inf);
    const auto y = scaled_softmax(x, 0.5);
    const auto kept = x[0].isfinite();
    EXPECT_TRUE(torch::equal(y[0].masked_select(kept.logical_not()), torch::zeros({(n + 1) / 2}))) << "n " << n;
    EXPECT_TRUE(torch::allclose(y[0].masked_select(kept), (0.5 * x[0].masked_select(kept)).softmax(0), 1e-6, 1e-7));
    EXPECT_TRUE(torch::allclose(y[1], (0.5 * x[1]).softmax(0), 1e-6, 1e-7));
  }
  // Shifted by the row's maximum: scores far beyond exp's range give finite weights.
  const auto large = torch::tensor({{1.0e4F, 1.0e4F - 1.0F, -1.0e4F, 3.0e4F, 3.0e4F, 0.0F, 2.0F, 2.0F, 1.0F}});
  EXPECT_TRUE(torch::allclose(scaled_softmax(large, 1.0), large.softmax(-1), 1e-6, 1e-7));
  // A row with nothing to attend to is NaN, as LibTorch's softmax makes it.
  EXPECT_TRUE(scaled_softmax(torch::full({1, 10}, -inf), 1.0).isnan().all().item<bool>());
}

TEST(ScaledSoftmax, TakesNonContiguousInputsAndOtherDtypesLikeLibTorch) {
  torch::manual_seed(23);
  const auto x = torch::randn({6, 20, 3}).transpose(1, 2);
  ASSERT_FALSE(x.is_contiguous());
  EXPECT_TRUE(torch::allclose(scaled_softmax(x, 0.3), (0.3 * x).softmax(-1), 1e-6, 1e-7));
  const auto doubles = torch::randn({4, 11}, torch::kFloat64);
  EXPECT_TRUE(torch::equal(scaled_softmax(doubles, 0.3), (doubles * 0.3).softmax(-1)));
  EXPECT_THROW(scaled_softmax(x, 0.0), c10::Error);
}

TEST(ScaledSoftmax, ForwardAndBackwardWithoutAutogradMatchTheDifferentiableOne) {
  torch::manual_seed(24);
  const auto values = torch::randn({8, 33});
  const auto x = values.clone().requires_grad_();
  const auto y = scaled_softmax(x, 0.7);
  const auto upstream = torch::randn({8, 33});
  y.backward(upstream);
  const auto y_plain = scaled_softmax_forward(values, 0.7);
  EXPECT_TRUE(torch::equal(y.detach(), y_plain));
  EXPECT_TRUE(torch::equal(x.grad(), scaled_softmax_backward(upstream, y_plain, 0.7)));
}

// Swin's windows: x [B, G, H, N, N] + bias [G, H, N, N], row r of x taking bias row r mod G·H·N.
TEST(ScaledSoftmax, AddsABiasRepeatedOverTheRowsInFp32BeforeTheMax) {
  torch::manual_seed(25);
  for (const int64_t n : kSoftmaxRowLengths) {
    const auto bias = 3.0 * torch::randn({2, 3, 4, n});
    const auto bias64 = bias.to(torch::kFloat64);
    for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
      const auto x = (4.0 * torch::randn({5, 2, 3, 4, n})).to(dtype);
      const auto y = scaled_softmax_forward(x.flatten(0, 1), 0.25, bias);
      const auto expected = (0.25 * x.to(torch::kFloat64) + bias64).softmax(-1).flatten(0, 1);
      ASSERT_EQ(y.scalar_type(), dtype);
      // bf16: the exact softmax of the fp32 logits rounded once.
      const double tolerance = dtype == torch::kFloat32 ? 1e-6 : 1.0 / 256;
      EXPECT_TRUE(torch::allclose(y.to(torch::kFloat64), expected, tolerance, 1e-7)) << "n " << n << " " << dtype;
    }
  }
  // A bias of -inf gives those pairs no weight; LibTorch's softmax where the row kernels do not apply.
  auto blocking = torch::zeros({1, 9});
  blocking.index_put_({0, torch::indexing::Slice(0, 4)}, -std::numeric_limits<float>::infinity());
  const auto scores = torch::randn({3, 9});
  EXPECT_TRUE(torch::equal(scaled_softmax_forward(scores, 1.0, blocking).slice(1, 0, 4), torch::zeros({3, 4})));
  const auto doubles = scores.to(torch::kFloat64);
  EXPECT_TRUE(torch::allclose(scaled_softmax_forward(doubles, 0.5, blocking),
                              (0.5 * doubles + blocking.to(torch::kFloat64)).softmax(-1)));
  EXPECT_THROW(scaled_softmax_forward(scores, 1.0, torch::zeros({2, 9})), c10::Error);  // 3 rows, 2 bias rows
  EXPECT_THROW(scaled_softmax_forward(scores, 1.0, torch::zeros({1, 9}, torch::kFloat64)), c10::Error);
}

// The single-row kernels of the AMX attention: the fp32 weights and gradients as the float64
// formulas give them, the bf16 copies their rounding, with zeros to the padded length; what lies
// past n in the fp32 rows is left as it was.
TEST(ScaledSoftmax, RowKernelsGiveFp32AndRoundedRowsWithZerosToThePaddedLength) {
  if (!softmax_row_kernels_available()) GTEST_SKIP() << "no AVX-512 BF16 on this CPU";
  torch::manual_seed(24);
  for (const int64_t n : kSoftmaxRowLengths) {
    const int64_t padded = (n + 31) / 32 * 32;
    for (const bool with_bias : {false, true}) {
      const float scale = 0.125F;
      const auto x = 8.0 * torch::randn({n});
      auto bias = torch::randn({n});
      if (with_bias && n > 1) bias.index_put_({0}, -100.0);  // a masked pair
      auto y = torch::full({padded}, 7.0F);
      auto rounded = torch::full({padded}, 7.0F, torch::kBFloat16);
      scaled_softmax_row(x.data_ptr<float>(), with_bias ? bias.data_ptr<float>() : nullptr, y.data_ptr<float>(),
                         rounded.data_ptr<c10::BFloat16>(), n, padded, scale);
      auto logits = x.to(torch::kFloat64) * scale;
      if (with_bias) logits = logits + bias.to(torch::kFloat64);
      const auto expected = logits.softmax(-1);
      const auto where = ::testing::Message() << "n " << n << (with_bias ? ", bias" : "");
      EXPECT_TRUE(torch::allclose(y.narrow(0, 0, n).to(torch::kFloat64), expected, 1e-6, 1e-7)) << where;
      EXPECT_TRUE(torch::equal(y.narrow(0, n, padded - n), torch::full({padded - n}, 7.0F))) << where;
      EXPECT_TRUE(torch::equal(rounded.narrow(0, 0, n), y.narrow(0, 0, n).to(torch::kBFloat16))) << where;
      EXPECT_EQ(rounded.narrow(0, n, padded - n).count_nonzero().item<int64_t>(), 0) << where;

      // The gradient from the bf16 weights.
      const auto weights = rounded.narrow(0, 0, n).contiguous();
      const auto dy = torch::randn({n});
      auto dx = torch::full({padded}, 7.0F);
      auto dx_rounded = torch::full({padded}, 7.0F, torch::kBFloat16);
      scaled_softmax_backward_row(dy.data_ptr<float>(), weights.data_ptr<c10::BFloat16>(), dx.data_ptr<float>(),
                                  dx_rounded.data_ptr<c10::BFloat16>(), n, padded, scale);
      const auto w64 = weights.to(torch::kFloat64), dy64 = dy.to(torch::kFloat64);
      const auto expected_dx = scale * w64 * (dy64 - (dy64 * w64).sum());
      EXPECT_TRUE(torch::allclose(dx.narrow(0, 0, n).to(torch::kFloat64), expected_dx, 1e-5, 1e-6)) << where;
      EXPECT_TRUE(torch::equal(dx.narrow(0, n, padded - n), torch::full({padded - n}, 7.0F))) << where;
      EXPECT_TRUE(torch::equal(dx_rounded.narrow(0, 0, n), dx.narrow(0, 0, n).to(torch::kBFloat16))) << where;
      EXPECT_EQ(dx_rounded.narrow(0, n, padded - n).count_nonzero().item<int64_t>(), 0) << where;
    }
  }
}

}  // namespace
}  // namespace vit::models
