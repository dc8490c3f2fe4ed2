#include "models/layers/attention.h"
#include "models/kernels/autocast_state.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace vit::models {
namespace {

using vit::testing::relative_error;

constexpr int64_t kBatch = 2;
constexpr int64_t kTokens = 5;
constexpr int64_t kDim = 8;
constexpr int64_t kHeads = 2;

// The suites named *OnDevice run where VIT_TEST_DEVICE says (CUDA on the GPU machine; LibTorch
// 2.x takes the fused scaled_dot_product_attention path there, masks included).
torch::Tensor randn(std::vector<int64_t> sizes) {
  return torch::randn(sizes, torch::TensorOptions(vit::testing::test_device()));
}

Attention make_attention() {
  torch::manual_seed(7);
  Attention attention(AttentionOptions{kDim, kHeads, /*qkv_bias=*/true});
  torch::NoGradGuard no_grad;
  for (auto& parameter : attention->parameters()) parameter.normal_(0.0, 0.5);  // non-zero biases too
  attention->eval();
  attention->to(vit::testing::test_device());
  return attention;
}

// softmax(q k^T / sqrt(d)) v for every head, written as plain loops over the formula.
torch::Tensor reference_attention(Attention& attention, const torch::Tensor& input) {
  auto params = attention->named_parameters();
  const auto exact = [](const torch::Tensor& t) { return t.to(torch::kCPU, torch::kFloat64); };
  const auto x = exact(input);
  const auto qkv = torch::matmul(x, exact(params["qkv.weight"]).t()) + exact(params["qkv.bias"]);
  const int64_t head_dim = kDim / kHeads;
  auto merged = torch::zeros({kBatch, kTokens, kDim}, torch::kFloat64);
  auto q = qkv.accessor<double, 3>();
  auto out = merged.accessor<double, 3>();
  for (int64_t b = 0; b < kBatch; ++b) {
    for (int64_t h = 0; h < kHeads; ++h) {
      const int64_t base = h * head_dim;
      for (int64_t i = 0; i < kTokens; ++i) {
        std::vector<double> weights(kTokens);
        double total = 0.0;
        for (int64_t j = 0; j < kTokens; ++j) {
          double dot = 0.0;
          for (int64_t c = 0; c < head_dim; ++c) dot += q[b][i][base + c] * q[b][j][kDim + base + c];
          weights[j] = std::exp(dot / std::sqrt(static_cast<double>(head_dim)));
          total += weights[j];
        }
        for (int64_t c = 0; c < head_dim; ++c) {
          double value = 0.0;
          for (int64_t j = 0; j < kTokens; ++j) value += weights[j] / total * q[b][j][2 * kDim + base + c];
          out[b][i][base + c] = value;
        }
      }
    }
  }
  return (torch::matmul(merged, exact(params["proj.weight"]).t()) + exact(params["proj.bias"])).to(torch::kFloat32);
}

TEST(AttentionOnDevice, EqualsThePerHeadFormula) {
  auto attention = make_attention();
  const auto x = randn({kBatch, kTokens, kDim});
  const auto expected = reference_attention(attention, x);
  EXPECT_TRUE(torch::allclose(attention(x).cpu(), expected, 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(attention->forward_with_weights(x).first.cpu(), expected, 1e-4, 1e-5));
}

// Where nothing reads the other rows (a class token's head after the last block), only the first
// tokens' queries are made and projected; their keys and values come from every token.
TEST(AttentionOnDevice, TheFirstQueriesAloneGiveTheFormulasRowsOfThoseTokens) {
  auto attention = make_attention();
  const auto x = randn({kBatch, kTokens, kDim});
  const auto expected = reference_attention(attention, x).narrow(1, 0, 2);
  const auto first = attention->forward_first_queries(x, 2);
  ASSERT_EQ(first.sizes(), (std::vector<int64_t>{kBatch, 2, kDim}));
  EXPECT_TRUE(torch::allclose(first.cpu(), expected, 1e-4, 1e-5));
}

// Under bf16 autocast the projections run in bf16, and on the CPU with LibTorch 1.x the heads go
// through fused_attention's bf16 path; forward_with_weights takes the unfused products.
TEST(Attention, UnderBf16AutocastStaysWithinBf16RoundingOfThePerHeadFormula) {
  auto attention = make_attention();
  attention->to(torch::kCPU);
  const auto x = torch::randn({kBatch, kTokens, kDim});
  const auto expected = reference_attention(attention, x);
  set_autocast_dtype(c10::kCPU, torch::kBFloat16);
  set_autocast_enabled(c10::kCPU, true);
  const auto fused = attention(x);
  const auto unfused = attention->forward_with_weights(x).first;
  const auto first_queries = attention->forward_first_queries(x, 2);
  set_autocast_enabled(c10::kCPU, false);
  EXPECT_EQ(fused.scalar_type(), torch::kBFloat16);
  EXPECT_LT(relative_error(fused, expected), 2e-2);
  EXPECT_LT(relative_error(unfused, expected), 2e-2);
  EXPECT_LT(relative_error(first_queries, expected.narrow(1, 0, 2)), 2e-2);
}

TEST(Attention, WeightsAreRowStochasticPerHead) {
  auto attention = make_attention();
  const auto weights = attention->forward_with_weights(torch::randn({kBatch, kTokens, kDim})).second;
  ASSERT_EQ(weights.sizes(), (std::vector<int64_t>{kBatch, kHeads, kTokens, kTokens}));
  EXPECT_TRUE(torch::allclose(weights.sum(-1), torch::ones({kBatch, kHeads, kTokens})));
}

TEST(AttentionOnDevice, PaddedKeysGetZeroWeightAndDoNotLeak) {
  auto attention = make_attention();
  const auto x = randn({kBatch, kTokens, kDim});
  auto padding = torch::zeros({kBatch, kTokens}, torch::TensorOptions(torch::kBool).device(x.device()));
  padding.index_put_({0, 3}, true);
  padding.index_put_({0, 4}, true);
  padding.index_put_({1, 1}, true);
  AttentionMask mask;
  mask.key_padding = padding;

  const auto [out, weights] = attention->forward_with_weights(x, mask);
  EXPECT_EQ(weights.index({0, torch::indexing::Slice(), torch::indexing::Slice(), 3}).abs().max().item<float>(), 0.0f);
  EXPECT_EQ(weights.index({0, torch::indexing::Slice(), torch::indexing::Slice(), 4}).abs().max().item<float>(), 0.0f);
  EXPECT_EQ(weights.index({1, torch::indexing::Slice(), torch::indexing::Slice(), 1}).abs().max().item<float>(), 0.0f);
  EXPECT_TRUE(torch::allclose(weights.sum(-1).cpu(), torch::ones({kBatch, kHeads, kTokens})));

  // Changing what sits in padded positions leaves every unpadded token's output unchanged.
  auto changed = x.clone();
  changed.index_put_({0, 3}, randn({kDim}) * 10);
  changed.index_put_({1, 1}, randn({kDim}) * 10);
  const auto out_changed = attention(changed, mask);
  const auto keep = padding.logical_not();
  EXPECT_TRUE(torch::allclose(out.index({keep}), out_changed.index({keep}), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(attention(x, mask), out, 1e-5, 1e-6));
}

TEST(AttentionOnDevice, CausalOutputsIgnoreLaterTokens) {
  auto attention = make_attention();
  const auto x = randn({kBatch, kTokens, kDim});
  AttentionMask causal;
  causal.causal = true;
  const auto [out, weights] = attention->forward_with_weights(x, causal);
  EXPECT_EQ(weights.triu(1).abs().max().item<float>(), 0.0f);

  for (int64_t j = 1; j < kTokens; ++j) {
    auto changed = x.clone();
    changed.index_put_({torch::indexing::Slice(), j}, randn({kBatch, kDim}) * 10);
    const auto out_changed = attention(changed, causal);
    const auto before = torch::indexing::Slice(0, j);
    EXPECT_TRUE(torch::allclose(out.index({torch::indexing::Slice(), before}),
                                out_changed.index({torch::indexing::Slice(), before}), 1e-5, 1e-6))
        << "token " << j << " leaked into earlier positions";
    EXPECT_FALSE(torch::allclose(out.index({torch::indexing::Slice(), j}),
                                 out_changed.index({torch::indexing::Slice(), j}), 1e-3, 1e-3));
  }
}

TEST(Attention, WorksForAnyBatchSizeAndSequenceLength) {
  auto attention = make_attention();
  for (const int64_t batch : {1, 3, 7}) {
    for (const int64_t tokens : {1, 4, 17}) {
      EXPECT_EQ(attention(torch::randn({batch, tokens, kDim})).sizes(), (std::vector<int64_t>{batch, tokens, kDim}));
    }
  }
}

}  // namespace
}  // namespace vit::models
