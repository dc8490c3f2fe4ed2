#pragma once

#include "models/layers/dropout.h"
#include "models/layers/linear.h"

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <utility>
#include <vector>

namespace vit::models {

struct AttentionOptions {
  int64_t dim;
  int64_t num_heads;
  bool qkv_bias = true;
  double attn_drop = 0.0;
  double proj_drop = 0.0;
};

// Which keys a query may not attend to, and what its scores get added. All parts are optional and combine.
struct AttentionMask {
  torch::Tensor key_padding;  // [B, N] bool, true marks a padding key that gets zero weight
  bool causal = false;        // query i ignores keys j > i
  // Added to the scores, [G, H|1, N, N]: sequence b gets bias[b % G] (Swin's windows: G windows per
  // image, each with its relative position bias and shift mask).
  torch::Tensor bias;

  bool empty() const { return !key_padding.defined() && !causal && !bias.defined(); }
};

// Multi-head self-attention with one fused qkv projection:
// softmax(Q K^T / sqrt(head_dim)) V per head, heads concatenated, then an output projection.
class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const AttentionOptions& options);

  // [B, N, D] -> [B, N, D]. Uses the fused scaled_dot_product_attention kernel on LibTorch >= 2.0,
  // and vitcpp's fused_attention for fp32 and bf16 on the CPU before that, where no mask or
  // attention dropout applies.
  torch::Tensor forward(const torch::Tensor& x, const AttentionMask& mask = {});
  // The same on x held as bf16 values in fp32 (a LayerNorm's rows rounded for the next product:
  // residual_layer_norm_to_bf16_values), under bf16 autocast with products on the fp32 kernels: the
  // qkv product reads x as it is, where forward would round it first.
  torch::Tensor forward_bf16_values(const torch::Tensor& x_values, const AttentionMask& mask = {});
  // Where leaves_rounding(x_values, mask): forward_bf16_values' output before its cast to bf16, the
  // output projection's fp32 product, for the caller to round in a pass of its own
  // (residual_layer_norm's branch_bf16_values).
  torch::Tensor forward_leaving_rounding(const torch::Tensor& x_values, const AttentionMask& mask = {});
  // The heads and the output projection run between bf16 values on the fp32 kernels, and no dropout
  // follows the projection in training.
  bool leaves_rounding(const torch::Tensor& x_values, const AttentionMask& mask = {}) const;
  // Also returns the attention weights [B, H, N, N] (after masking and softmax, before dropout).
  std::pair<torch::Tensor, torch::Tensor> forward_with_weights(const torch::Tensor& x, const AttentionMask& mask = {});
  // Where leaves_bias(): forward's output without the output projection's bias, and that bias,
  // for the caller to add in a pass of its own (residual_layer_norm's branch_bias).
  std::pair<torch::Tensor, torch::Tensor> forward_leaving_bias(const torch::Tensor& x, const AttentionMask& mask = {});
  // The output projection has a bias, and no dropout follows it in training.
  bool leaves_bias() const;
  // forward(x)'s rows of the first `queries` tokens alone, [B, queries, D], without a mask: their
  // queries attend to the keys and values of all N tokens, and only those rows are projected, for
  // a caller that reads nothing else (a class token's head after the last block).
  torch::Tensor forward_first_queries(const torch::Tensor& x, int64_t queries);

 private:
  // A projection of `parts` concatenated parts [B, N, parts x D] -> each part [B, H, N, head_dim]
  // (qkv: q, k, v); batch and token counts stay symbolic.
  std::vector<torch::Tensor> split_heads(const torch::Tensor& projection, int64_t parts);
  // [B, H, N, head_dim] -> [B, N, D].
  static torch::Tensor merge_heads(const torch::Tensor& per_head);
  // Attention over the qkv projection, unfused: the heads' outputs merged [B, N, D] and the weights.
  std::pair<torch::Tensor, torch::Tensor> attend(const torch::Tensor& qkv, const AttentionMask& mask);
  // The same over the heads' q [B, H, Nq, head_dim], k and v [B, H, N, head_dim]: merged [B, Nq, D]
  // and the weights [B, H, Nq, N]. The mask's blocked pairs take Nq = N.
  std::pair<torch::Tensor, torch::Tensor> attend_heads(const torch::Tensor& q, const torch::Tensor& k,
                                                       const torch::Tensor& v, const AttentionMask& mask);
  // The heads' outputs merged [B, N, D], before the output projection: the fused kernels where they apply.
  torch::Tensor merged_heads(const torch::Tensor& x, const AttentionMask& mask);
  // Whether the fused attention node (LibTorch < 2) can take a call with this mask.
  bool fuses(const AttentionMask& mask) const;
  // The output projection (and its dropout) of the merged heads.
  torch::Tensor project(const torch::Tensor& merged);
  // The same two where bf16 products run on the fp32 kernels (LibTorch < 2), on x as bf16 values in
  // fp32: the merged heads as bf16 values in fp32, and the output projection's fp32 product of them
  // (which autocast would round to bf16).
  bool attends_bf16_values(const torch::Tensor& x, const AttentionMask& mask) const;
  torch::Tensor attend_bf16_values(const torch::Tensor& x_values, const torch::Tensor& bias);
  torch::Tensor projection_of_bf16_values(const torch::Tensor& x_values, const AttentionMask& mask);
  // That projection rounded to bf16, and its dropout.
  torch::Tensor projected_bf16_values(const torch::Tensor& x_values, const AttentionMask& mask);

  int64_t num_heads_;
  int64_t head_dim_;
  double scale_;
  Linear qkv_{nullptr};
  Dropout attn_drop_{nullptr};
  Linear proj_{nullptr};
  Dropout proj_drop_{nullptr};
};
TORCH_MODULE(Attention);

}  // namespace vit::models
