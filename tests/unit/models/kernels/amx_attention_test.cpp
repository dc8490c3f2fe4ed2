#include "models/kernels/amx_attention.h"

#include "models/kernels/fused_attention.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <vector>

namespace vit::models {
namespace {

using vit::testing::relative_error;
using vit::testing::unfused_attention;

struct Shape {
  int64_t batch, tokens, heads, head_dim, bias_groups;
};

class AmxAttention : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!amx_attention_applies(64)) GTEST_SKIP() << "this CPU has no AMX tile units this process may use";
  }
};

// Tokens from 1 to past a tile's 16 and an inner block's 32, heads of sizes that pad to the tiles
// (6, 40, 80) or fill them (32, 64), with and without a bias per group of sequences: the kernels
// themselves, whichever sizes fused_attention gives them.
TEST_F(AmxAttention, IsCloserToFloat64ThanLibTorchsBf16Products) {
  torch::manual_seed(21);
  for (const auto& s : {Shape{2, 1, 2, 32, 0}, Shape{3, 5, 2, 6, 0}, Shape{2, 17, 4, 32, 0}, Shape{2, 50, 3, 40, 0},
                        Shape{2, 197, 3, 64, 0}, Shape{4, 49, 3, 32, 2}, Shape{2, 33, 2, 80, 1}}) {
    const double scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim));
    const auto values = torch::randn({s.batch, s.tokens, 3 * s.heads * s.head_dim}).mul(2.0).to(torch::kBFloat16);
    torch::Tensor bias_values;
    if (s.bias_groups > 0) {
      bias_values = torch::randn({s.bias_groups, s.heads, s.tokens, s.tokens});
      bias_values.index_put_({0, 0, 0, torch::indexing::Slice(1, torch::indexing::None)}, -100.0);  // masked pairs
    }
    const auto upstream = torch::randn({s.batch, s.tokens, s.heads * s.head_dim}).to(torch::kBFloat16);

    const auto qkv64 = values.to(torch::kFloat64).requires_grad_();
    const auto bias64 = s.bias_groups > 0 ? bias_values.to(torch::kFloat64).requires_grad_() : torch::Tensor();
    const auto exact_out = unfused_attention(qkv64, s.heads, scale, bias64);
    (exact_out * upstream.to(torch::kFloat64)).sum().backward();
    const std::vector<torch::Tensor> exact{exact_out.detach(), qkv64.grad(),
                                           bias64.defined() ? bias64.grad() : torch::Tensor()};

    const auto [out, saved] = amx_attention_forward(values, s.heads, scale, bias_values);
    const auto [grad_qkv, grad_scores] = amx_attention_backward(upstream, values, saved, s.heads, scale, true);
    // The bias's gradient as fused_attention's node forms it: the logits' gradient summed over the
    // sequences that took each bias.
    torch::Tensor grad_bias;
    if (s.bias_groups > 0)
      grad_bias = grad_scores.view({-1, bias_values.numel()}).sum(0).div(scale).view_as(bias_values);
    const std::vector<torch::Tensor> tiles{out.to(torch::kFloat64), grad_qkv.to(torch::kFloat64),
                                           grad_bias.defined() ? grad_bias.to(torch::kFloat64) : grad_bias};

    const auto qkv = values.clone().requires_grad_();
    const auto bias = s.bias_groups > 0 ? bias_values.clone().requires_grad_() : torch::Tensor();
    const auto libtorch_out = unfused_attention(qkv, s.heads, scale, bias);
    (libtorch_out * upstream).sum().backward();
    const std::vector<torch::Tensor> libtorch{libtorch_out.to(torch::kFloat64), qkv.grad().to(torch::kFloat64),
                                              bias.defined() ? bias.grad().to(torch::kFloat64) : torch::Tensor()};

    const auto where = "tokens " + std::to_string(s.tokens) + ", head_dim " + std::to_string(s.head_dim) +
                       (s.bias_groups > 0 ? ", bias" : "");
    for (size_t i = 0; i < exact.size(); ++i) {
      if (!exact[i].defined()) continue;
      ASSERT_EQ(tiles[i].sizes(), exact[i].sizes()) << where << ", output " << i;
      // bf16 keeps 8 bits of mantissa (relative rounding 2^-9 = 0.2 %); with the scores in fp32
      // through the softmax the errors are 2-3 times smaller than LibTorch's, which rounds them.
      EXPECT_LT(relative_error(tiles[i], exact[i]), 1e-2) << where << ", output " << i;
      EXPECT_LE(relative_error(tiles[i], exact[i]), 0.8 * relative_error(libtorch[i], exact[i]) + 1e-4)
          << where << ", output " << i;
    }
  }
}

// fused_attention's bf16 node runs the kernels on heads of any even size (and, where no gradient
// is wanted, the kernels without their node); heads of odd size keep oneDNN's products.
TEST_F(AmxAttention, RunsInFusedAttentionsBf16NodeOnHeadsOfEvenSize) {
  EXPECT_TRUE(amx_attention_applies(64));
  EXPECT_TRUE(amx_attention_applies(32));
  EXPECT_FALSE(amx_attention_applies(5));
  const auto node_of = [](int64_t tokens, int64_t head_dim) {
    const auto qkv = torch::randn({2, tokens, 3 * 2 * head_dim}).to(torch::kBFloat16).requires_grad_();
    const auto out = fused_attention(qkv, 2, 0.125);
    out.sum().backward();
    EXPECT_EQ(qkv.grad().sizes(), qkv.sizes());
    return out.grad_fn()->name();
  };
  EXPECT_NE(node_of(197, 64).find("TileAttention"), std::string::npos);
  EXPECT_NE(node_of(17, 32).find("TileAttention"), std::string::npos);
  EXPECT_EQ(node_of(197, 5).find("TileAttention"), std::string::npos);

  // Through the node, the output and qkv's gradient of the kernels called directly.
  torch::manual_seed(25);
  const auto values = torch::randn({2, 197, 3 * 2 * 64}).to(torch::kBFloat16);
  const auto upstream = torch::randn({2, 197, 2 * 64}).to(torch::kBFloat16);
  const auto qkv = values.clone().requires_grad_();
  const auto out = fused_attention(qkv, 2, 0.125);
  (out * upstream).sum().backward();
  const auto [direct, saved] = amx_attention_forward(values, 2, 0.125, {});
  EXPECT_TRUE(torch::equal(out, direct));
  EXPECT_TRUE(torch::equal(qkv.grad(), amx_attention_backward(upstream, values, saved, 2, 0.125, false).first));

  // Without gradients wanted, the same output from the kernels keeping no weights.
  {
    const torch::NoGradGuard no_gradients;
    const auto evaluated = fused_attention(values, 2, 0.125);
    EXPECT_EQ(evaluated.grad_fn(), nullptr);
    EXPECT_TRUE(torch::equal(evaluated, direct));
    const auto [unkept, none] = amx_attention_forward(values, 2, 0.125, {}, false);
    EXPECT_TRUE(torch::equal(unkept, direct));
    EXPECT_FALSE(none.weights.defined());
    EXPECT_FALSE(none.transposed.defined());
  }
  const auto biased = torch::randn({1, 2, 197, 197});
  EXPECT_TRUE(torch::equal(amx_attention_forward(values, 2, 0.125, biased, false).first,
                           amx_attention_forward(values, 2, 0.125, biased).first));

  // Shapes the kernels cannot take are refused, not read past.
  EXPECT_THROW(amx_attention_forward(values, 2, 0.125, torch::zeros({3, 2, 197, 197})), c10::Error);  // 3 ∤ 2
  EXPECT_THROW(amx_attention_forward(values, 2, 0.125, torch::zeros({1, 2, 196, 196})), c10::Error);
  EXPECT_THROW(amx_attention_forward(values.to(torch::kFloat32), 2, 0.125, {}), c10::Error);
  EXPECT_THROW(amx_attention_backward(upstream.narrow(1, 0, 196), values, saved, 2, 0.125, false), c10::Error);
  EXPECT_THROW(
      amx_attention_backward(upstream, values, {saved.weights.narrow(0, 0, 2), saved.transposed}, 2, 0.125, false),
      c10::Error);
}

// The saved weights: each row the bf16 softmax of its scores, zeros in the padding, and the
// transposed copy its transpose.
TEST_F(AmxAttention, KeepsTheBf16WeightsAndTheirTransposePadded) {
  torch::manual_seed(22);
  const int64_t tokens = 21, heads = 2, head_dim = 16;
  const auto qkv = torch::randn({3, tokens, 3 * heads * head_dim}).to(torch::kBFloat16);
  const auto [out, saved] = amx_attention_forward(qkv, heads, 0.25, {});
  ASSERT_EQ(saved.weights.sizes(), torch::IntArrayRef({3 * heads, 32, 32}));
  ASSERT_EQ(saved.transposed.sizes(), saved.weights.sizes());
  const auto parts = qkv.to(torch::kFloat64).unflatten(-1, {3, heads, -1}).permute({2, 0, 3, 1, 4});
  const auto expected =
      torch::matmul(parts[0], parts[1].transpose(-2, -1)).mul(0.25).softmax(-1).flatten(0, 1).to(torch::kBFloat16);
  const auto valid = saved.weights.narrow(1, 0, tokens).narrow(2, 0, tokens);
  // The scores are fp32 sums of products of bf16 values: the weights may differ by a bf16 unit.
  EXPECT_TRUE(torch::allclose(valid.to(torch::kFloat64), expected.to(torch::kFloat64), 8e-3, 1e-6));
  EXPECT_EQ(saved.weights.narrow(1, tokens, 32 - tokens).count_nonzero().item<int64_t>(), 0);
  EXPECT_EQ(saved.weights.narrow(2, tokens, 32 - tokens).count_nonzero().item<int64_t>(), 0);
  EXPECT_TRUE(torch::equal(saved.transposed.narrow(1, 0, tokens), saved.weights.transpose(1, 2).narrow(1, 0, tokens)));
  EXPECT_EQ(saved.transposed.narrow(1, tokens, 32 - tokens).count_nonzero().item<int64_t>(), 0);
}

// Each head is one task on one thread: the same bits, forward and backward, on one thread and on two.
TEST_F(AmxAttention, GivesTheSameBitsOnAnyNumberOfThreads) {
  torch::manual_seed(23);
  const auto qkv = torch::randn({8, 65, 3 * 4 * 32}).to(torch::kBFloat16);
  const auto grad_out = torch::randn({8, 65, 4 * 32}).to(torch::kBFloat16);
  const int threads = torch::get_num_threads();
  std::vector<torch::Tensor> results[2];
  for (const int count : {1, 2}) {
    torch::set_num_threads(count);
    const auto [out, saved] = amx_attention_forward(qkv, 4, 0.125, {});
    const auto [grad_qkv, grad_scores] = amx_attention_backward(grad_out, qkv, saved, 4, 0.125, true);
    results[count - 1] = {out, saved.weights, saved.transposed, grad_qkv, grad_scores};
  }
  torch::set_num_threads(threads);
  for (size_t i = 0; i < results[0].size(); ++i) EXPECT_TRUE(torch::equal(results[0][i], results[1][i])) << i;
}

}  // namespace
}  // namespace vit::models
