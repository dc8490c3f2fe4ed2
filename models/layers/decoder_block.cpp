#include "models/layers/decoder_block.h"

#include "models/layers/block.h"

namespace vit::models {
namespace {

int64_t hidden_dim(const DecoderBlockOptions& options) {
  return static_cast<int64_t>(static_cast<double>(options.dim) * options.mlp_ratio);
}

}  // namespace

DecoderBlockImpl::DecoderBlockImpl(const DecoderBlockOptions& options) {
  const MultiheadAttentionOptions attention{options.dim, options.num_heads, options.attn_drop};
  norm1_ = register_module("norm1", vit_layer_norm(options.dim));
  self_attn_ = register_module("self_attn", MultiheadAttention(attention));
  drop1_ = register_module("drop1", Dropout(options.drop));
  norm2_ = register_module("norm2", vit_layer_norm(options.dim));
  cross_attn_ = register_module("cross_attn", MultiheadAttention(attention));
  drop2_ = register_module("drop2", Dropout(options.drop));
  norm3_ = register_module("norm3", vit_layer_norm(options.dim));
  mlp_ = register_module("mlp", Mlp(MlpOptions{options.dim, hidden_dim(options), options.drop}));
}

torch::Tensor DecoderBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& query_pos,
                                        const torch::Tensor& memory, const torch::Tensor& memory_pos) {
  // The residual stream stays fp32 under autocast (LibTorch 1.13's CPU autocast leaves LayerNorm's
  // input dtype alone, and a bf16 LayerNorm would lose the small updates).
  const auto normed = norm1_(x);
  auto y = x + drop1_(self_attn_(normed + query_pos, normed + query_pos, normed));
  y = y + drop2_(cross_attn_(norm2_(y) + query_pos, memory + memory_pos, memory));
  return y + mlp_(norm3_(y));
}

int64_t decoder_block_macs(const DecoderBlockOptions& options, int64_t queries, int64_t memory) {
  const int64_t dim = options.dim;
  const int64_t self_attention = 4 * queries * dim * dim + 2 * queries * queries * dim;
  const int64_t cross_attention = 2 * queries * dim * dim + 2 * memory * dim * dim + 2 * queries * memory * dim;
  return self_attention + cross_attention + 2 * queries * dim * hidden_dim(options);
}

}  // namespace vit::models
