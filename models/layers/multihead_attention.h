#pragma once

#include "models/layers/dropout.h"
#include "models/layers/linear.h"

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

namespace vit::models {

struct MultiheadAttentionOptions {
  int64_t dim;
  int64_t num_heads;
  double attn_drop = 0.0;
};

// Multi-head attention whose queries, keys and values come apart, each with its own projection
// (q_proj, k_proj, v_proj, then out_proj): what a Transformer decoder needs for self-attention with
// positions added to the queries and keys but not the values, and for cross-attention to another
// sequence (DETR's object queries reading the image tokens).
class MultiheadAttentionImpl : public torch::nn::Module {
 public:
  explicit MultiheadAttentionImpl(const MultiheadAttentionOptions& options);

  // query [B, Nq, D], key and value [B, Nk, D] -> [B, Nq, D].
  torch::Tensor forward(const torch::Tensor& query, const torch::Tensor& key, const torch::Tensor& value);

 private:
  // [B, N, D] -> [B, H, N, head_dim].
  torch::Tensor split_heads(const torch::Tensor& x) const;

  int64_t num_heads_;
  double scale_;
  Linear q_proj_{nullptr};
  Linear k_proj_{nullptr};
  Linear v_proj_{nullptr};
  Dropout attn_drop_{nullptr};
  Linear out_proj_{nullptr};
};
TORCH_MODULE(MultiheadAttention);

}  // namespace vit::models
