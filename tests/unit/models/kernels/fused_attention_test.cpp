#include "models/kernels/fused_attention.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace vit::models {
namespace {

using vit::testing::relative_error;

// softmax(q k^T · scale) v per head in float64 from LibTorch's own ops, heads merged to [B, N, D].
torch::Tensor unfused(const torch::Tensor& qkv, int64_t heads, double scale) {
  const auto parts = qkv.unflatten(-1, {3, heads, -1}).permute({2, 0, 3, 1, 4});
  const auto weights = torch::matmul(parts[0], parts[1].transpose(-2, -1)).mul(scale).softmax(-1);
  return torch::matmul(weights, parts[2]).transpose(1, 2).flatten(2);
}

struct Shape {
  int64_t batch, tokens, heads, head_dim;
};

TEST(FusedAttention, EqualsTheUnfusedProductsAndTheirGradients) {
  torch::manual_seed(11);
  for (const auto& s : {Shape{2, 5, 2, 4}, Shape{3, 17, 4, 8}, Shape{1, 1, 1, 3}, Shape{2, 50, 3, 16}}) {
    const double scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim));
    const auto values = torch::randn({s.batch, s.tokens, 3 * s.heads * s.head_dim});
    const auto qkv = values.clone().requires_grad_();
    const auto qkv64 = values.to(torch::kFloat64).requires_grad_();
    ASSERT_TRUE(fused_attention_applies(qkv));

    const auto out = fused_attention(qkv, s.heads, scale);
    const auto expected = unfused(qkv64, s.heads, scale);
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
  const auto out = fused ? fused_attention(qkv, heads, scale) : unfused(qkv, heads, scale);
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
    const auto expected = unfused(qkv64, s.heads, scale);
    const auto upstream = torch::randn(expected.sizes(), torch::kFloat64);
    (expected * upstream.to(torch::kBFloat16).to(torch::kFloat64)).sum().backward();

    const auto [out, grad] = bf16_attention(values, upstream, s.heads, scale, true);
    const auto [libtorch_out, libtorch_grad] = bf16_attention(values, upstream, s.heads, scale, false);
    ASSERT_EQ(out.sizes(), expected.sizes());
    ASSERT_EQ(grad.sizes(), qkv64.sizes());
    // bf16 keeps 8 bits of mantissa (relative rounding 2^-9 = 0.2 %); each path rounds the scores,
    // the weights and the products.
    EXPECT_LT(relative_error(out, expected), 1e-2) << "tokens " << s.tokens;
    EXPECT_LT(relative_error(grad, qkv64.grad()), 2e-2) << "tokens " << s.tokens;
    EXPECT_LT(relative_error(out, expected), 1.25 * relative_error(libtorch_out, expected) + 1e-3)
        << "tokens " << s.tokens;
    EXPECT_LT(relative_error(grad, qkv64.grad()), 1.25 * relative_error(libtorch_grad, qkv64.grad()) + 1e-3)
        << "tokens " << s.tokens;
  }
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
