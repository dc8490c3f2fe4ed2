#include "models/kernels/fused_attention.h"

#include "models/kernels/bf16_products.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>

namespace vit::models {
namespace {

using vit::testing::relative_error;
using vit::testing::ScopedBf16Products;
using vit::testing::unfused_attention;

struct Shape {
  int64_t batch, tokens, heads, head_dim;
};

TEST(FusedAttention, EqualsTheUnfusedProductsAndTheirGradients) {
  torch::manual_seed(11);
  for (const auto& s :
       {Shape{2, 5, 2, 4}, Shape{3, 17, 4, 8}, Shape{1, 1, 1, 3}, Shape{2, 50, 3, 16}, Shape{2, 197, 2, 64}}) {
    const double scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim));
    const auto values = torch::randn({s.batch, s.tokens, 3 * s.heads * s.head_dim});
    const auto qkv = values.clone().requires_grad_();
    const auto qkv64 = values.to(torch::kFloat64).requires_grad_();
    ASSERT_TRUE(fused_attention_applies(qkv));

    const auto out = fused_attention(qkv, s.heads, scale);
    const auto expected = unfused_attention(qkv64, s.heads, scale);
    ASSERT_EQ(out.sizes(), expected.sizes());
    EXPECT_TRUE(torch::allclose(out.to(torch::kFloat64), expected, 1e-5, 1e-5)) << "tokens " << s.tokens;

    const auto upstream = torch::randn(expected.sizes(), torch::kFloat64);
    (out * upstream.to(torch::kFloat32)).sum().backward();
    (expected * upstream).sum().backward();
    EXPECT_TRUE(torch::allclose(qkv.grad().to(torch::kFloat64), qkv64.grad(), 1e-4, 1e-5)) << "tokens " << s.tokens;
  }
}

TEST(FusedAttention, GivesTheSameBitsOnOneThreadAndOnTwo) {
  torch::manual_seed(12);
  const auto values = torch::randn({16, 17, 3 * 4 * 8});
  const int threads = torch::get_num_threads();
  torch::Tensor outputs[2], grads[2];
  for (const int count : {1, 2}) {
    torch::set_num_threads(count);
    const auto qkv = values.clone().requires_grad_();
    outputs[count - 1] = fused_attention(qkv, 4, 0.125);
    outputs[count - 1].pow(2).sum().backward();
    grads[count - 1] = qkv.grad();
  }
  torch::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(outputs[0], outputs[1]));
  EXPECT_TRUE(torch::equal(grads[0], grads[1]));
}

// The output and qkv's gradient of an attention over bf16 values, as float64.
std::pair<torch::Tensor, torch::Tensor> bf16_attention(const torch::Tensor& values, const torch::Tensor& upstream,
                                                       int64_t heads, double scale, bool fused) {
  const auto qkv = values.clone().requires_grad_();
  const auto out = fused ? fused_attention(qkv, heads, scale) : unfused_attention(qkv, heads, scale);
  (out * upstream.to(torch::kBFloat16)).sum().backward();
  return {out.to(torch::kFloat64), qkv.grad().to(torch::kFloat64)};
}

TEST(FusedAttention, InBf16IsAsCloseToFloat64AsLibTorchsBf16Products) {
  torch::manual_seed(13);
  for (const auto& s :
       {Shape{2, 5, 2, 4}, Shape{3, 17, 4, 32}, Shape{1, 1, 1, 8}, Shape{2, 50, 4, 32}, Shape{2, 197, 3, 64}}) {
    const double scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim));
    // Rounded to bf16 first, so that every path multiplies the same values.
    const auto values = torch::randn({s.batch, s.tokens, 3 * s.heads * s.head_dim}).to(torch::kBFloat16);
    ASSERT_TRUE(fused_attention_applies(values));
    const auto qkv64 = values.to(torch::kFloat64).requires_grad_();
    const auto expected = unfused_attention(qkv64, s.heads, scale);
    const auto upstream = torch::randn(expected.sizes(), torch::kFloat64);
    (expected * upstream.to(torch::kBFloat16).to(torch::kFloat64)).sum().backward();

    const auto [libtorch_out, libtorch_grad] = bf16_attention(values, upstream, s.heads, scale, false);
    // Head-major through oneDNN's bf16 products, or the fp32 node on the bf16 values.
    for (const auto products : {Bf16Products::kOneDnn, Bf16Products::kFp32Blas}) {
      const ScopedBf16Products chosen(products);
      const auto [out, grad] = bf16_attention(values, upstream, s.heads, scale, true);
      const auto label =
          "tokens " + std::to_string(s.tokens) + (products == Bf16Products::kOneDnn ? ", oneDNN" : ", BLAS");
      ASSERT_EQ(out.scalar_type(), torch::kFloat64);
      ASSERT_EQ(out.sizes(), expected.sizes());
      ASSERT_EQ(grad.sizes(), qkv64.sizes());
      // bf16 keeps 8 bits of mantissa (relative rounding 2^-9 = 0.2 %); LibTorch rounds the scores,
      // the weights and the products.
      EXPECT_LT(relative_error(out, expected), 1e-2) << label;
      EXPECT_LT(relative_error(grad, qkv64.grad()), 2e-2) << label;
      EXPECT_LT(relative_error(out, expected), 1.25 * relative_error(libtorch_out, expected) + 1e-3) << label;
      EXPECT_LT(relative_error(grad, qkv64.grad()), 1.25 * relative_error(libtorch_grad, qkv64.grad()) + 1e-3) << label;
    }
  }
}

// Between bf16 products on the fp32 kernels, the node is the fp32 node between roundings to bf16
// values: the same output and gradient bit for bit, whether the products round as they write (a
// head unpacked_gemm takes) or a pass rounds after them.
TEST(FusedAttention, BetweenBf16ProductsIsTheFp32NodeBetweenRoundings) {
  const ScopedBf16Products chosen(Bf16Products::kFp32Blas);
  torch::manual_seed(14);
  for (const auto& s : {Shape{2, 17, 4, 8}, Shape{2, 197, 2, 64}}) {
    const double scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim));
    const auto values = torch::randn({s.batch, s.tokens, 3 * s.heads * s.head_dim});
    const auto upstream = torch::randn({s.batch, s.tokens, s.heads * s.head_dim});
    const auto qkv = values.clone().requires_grad_();
    const auto out = attention_between_bf16_products(qkv, s.heads, scale);
    (out * upstream).sum().backward();
    const auto reference_qkv = values.clone().requires_grad_();
    const auto reference = bf16_values(fused_attention(bf16_values(reference_qkv), s.heads, scale));
    (reference * upstream).sum().backward();
    const auto label = "tokens " + std::to_string(s.tokens);
    ASSERT_EQ(out.scalar_type(), torch::kFloat32);
    EXPECT_TRUE(torch::equal(out, reference)) << label;
    EXPECT_TRUE(torch::equal(qkv.grad(), reference_qkv.grad())) << label;
    EXPECT_TRUE(torch::equal(out, out.to(torch::kBFloat16).to(torch::kFloat32))) << label << ": not bf16 values";
  }
}

// qkv's bias left to the node is the same as added to its fp32 product before: the fp32 sum rounded
// once, q, k and v's gradient, and the bias's (that gradient summed over the rows), bit for bit;
// with a bias on the scores too (Swin's), whose gradient stays the same.
TEST(FusedAttention, BetweenBf16ProductsAddsQkvsBiasAsItRoundsQkv) {
  const ScopedBf16Products chosen(Bf16Products::kFp32Blas);
  torch::manual_seed(15);
  for (const auto& s : {Shape{2, 17, 4, 8}, Shape{2, 197, 2, 64}}) {
    for (const bool scores_biased : {false, true}) {
      const double scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim));
      const auto values = torch::randn({s.batch, s.tokens, 3 * s.heads * s.head_dim});
      const auto bias_values = torch::randn({3 * s.heads * s.head_dim});
      const auto scores_bias_values = torch::randn({1, s.heads, s.tokens, s.tokens});
      const auto upstream = torch::randn({s.batch, s.tokens, s.heads * s.head_dim});
      const auto run = [&](bool bias_to_the_node) {
        const auto qkv = values.clone().requires_grad_();
        const auto bias = bias_values.clone().requires_grad_();
        const auto scores_bias = scores_biased ? scores_bias_values.clone().requires_grad_() : torch::Tensor();
        const auto out = bias_to_the_node ? attention_between_bf16_products(qkv, s.heads, scale, scores_bias, bias)
                                          : attention_between_bf16_products(qkv + bias, s.heads, scale, scores_bias);
        (out * upstream).sum().backward();
        return std::tuple{out, qkv.grad(), bias.grad(), scores_biased ? scores_bias.grad() : torch::zeros({1})};
      };
      const auto [out, qkv_grad, bias_grad, scores_bias_grad] = run(true);
      const auto [reference, reference_qkv_grad, reference_bias_grad, reference_scores_bias_grad] = run(false);
      const auto label = "tokens " + std::to_string(s.tokens) + (scores_biased ? ", scores biased" : "");
      EXPECT_TRUE(torch::equal(out, reference)) << label;
      EXPECT_TRUE(torch::equal(qkv_grad, reference_qkv_grad)) << label;
      EXPECT_TRUE(torch::equal(bias_grad, reference_bias_grad)) << label;
      EXPECT_TRUE(torch::equal(scores_bias_grad, reference_scores_bias_grad)) << label;
    }
  }
  const auto qkv = torch::randn({2, 5, 12});
  EXPECT_THROW(attention_between_bf16_products(qkv, 2, 0.5, {}, torch::randn({11})), c10::Error) << "bias size";
  EXPECT_THROW(attention_between_bf16_products(qkv.to(torch::kBFloat16), 2, 0.5, {}, torch::randn({12})), c10::Error)
      << "a bf16 qkv, rounded already";
}

struct BiasedShape {
  int64_t batch, tokens, heads, head_dim, groups, bias_heads;
};

// Swin's relative position bias and shift mask: [G, heads | 1, N, N], sequence b taking bias[b mod G].
TEST(FusedAttention, AddsABiasPerGroupOfSequencesAndGivesItsGradient) {
  torch::manual_seed(14);
  for (const auto& s : {BiasedShape{4, 49, 3, 8, 2, 3}, BiasedShape{2, 5, 2, 4, 1, 1}, BiasedShape{3, 7, 2, 4, 3, 2},
                        BiasedShape{2, 16, 4, 32, 2, 4}}) {
    const double scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim));
    auto bias_values = torch::randn({s.groups, s.bias_heads, s.tokens, s.tokens});
    bias_values.index_put_({0, 0, 0, torch::indexing::Slice(1, torch::indexing::None)}, -100.0);  // a masked pair
    const auto bias64 = bias_values.to(torch::kFloat64).requires_grad_();
    for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
      // Rounded to the dtype first, so that every path multiplies the same values.
      const auto values = torch::randn({s.batch, s.tokens, 3 * s.heads * s.head_dim}).to(dtype);
      const auto qkv64 = values.to(torch::kFloat64).requires_grad_();
      const auto expected = unfused_attention(qkv64, s.heads, scale, bias64);
      const auto upstream = torch::randn(expected.sizes(), torch::kFloat64).to(dtype).to(torch::kFloat64);
      bias64.mutable_grad() = torch::Tensor();
      (expected * upstream).sum().backward();

      const auto outcome = [&](bool fused) {
        const auto qkv = values.clone().requires_grad_();
        const auto bias = bias_values.clone().requires_grad_();
        const auto out =
            fused ? fused_attention(qkv, s.heads, scale, bias) : unfused_attention(qkv, s.heads, scale, bias);
        (out * upstream.to(dtype)).sum().backward();
        EXPECT_EQ(bias.grad().scalar_type(), torch::kFloat32);
        return std::vector<torch::Tensor>{out.to(torch::kFloat64), qkv.grad().to(torch::kFloat64),
                                          bias.grad().to(torch::kFloat64)};
      };
      const auto fused = outcome(true);
      const std::vector<torch::Tensor> exact{expected, qkv64.grad(), bias64.grad()};
      const auto where = ::testing::Message() << "tokens " << s.tokens << " groups " << s.groups << " " << dtype;
      if (dtype == torch::kFloat32) {
        EXPECT_TRUE(torch::allclose(fused[0], exact[0], 1e-5, 1e-5)) << where;
        EXPECT_TRUE(torch::allclose(fused[1], exact[1], 1e-4, 1e-5)) << where;
        EXPECT_TRUE(torch::allclose(fused[2], exact[2], 1e-4, 1e-5)) << where;
        continue;
      }
      // bf16: as close to float64 as LibTorch's bf16 products with the bias added in fp32.
      const auto libtorch = outcome(false);
      for (size_t i = 0; i < exact.size(); ++i) {
        EXPECT_LT(relative_error(fused[i], exact[i]), 2e-2) << where << " output " << i;
        EXPECT_LT(relative_error(fused[i], exact[i]), 1.25 * relative_error(libtorch[i], exact[i]) + 1e-3)
            << where << " output " << i;
      }
    }
  }
  const auto qkv = torch::randn({4, 5, 24});
  EXPECT_THROW(fused_attention(qkv, 2, 1.0, torch::zeros({3, 2, 5, 5})), c10::Error);  // 3 does not divide 4
  EXPECT_THROW(fused_attention(qkv, 2, 1.0, torch::zeros({2, 3, 5, 5})), c10::Error);  // 3 heads of 2
  EXPECT_THROW(fused_attention(qkv, 2, 1.0, torch::zeros({2, 2, 5})), c10::Error);
}

TEST(FusedAttention, TakesOnlyContiguousFp32OrBf16CpuProjections) {
  EXPECT_FALSE(fused_attention_applies(torch::randn({2, 5, 24}, torch::kFloat64)));
  EXPECT_FALSE(fused_attention_applies(torch::randn({2, 24, 5}, torch::kBFloat16).transpose(1, 2)));
  EXPECT_FALSE(fused_attention_applies(torch::randn({2, 24, 5}).transpose(1, 2)));
  EXPECT_FALSE(fused_attention_applies(torch::randn({5, 24})));
  EXPECT_THROW(fused_attention(torch::randn({2, 5, 24}), 5, 1.0), c10::Error);  // 24 channels, 5 heads
}

}  // namespace
}  // namespace vit::models
