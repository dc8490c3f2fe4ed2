#include "models/layers/block.h"

namespace vit::models {

torch::nn::LayerNorm vit_layer_norm(int64_t dim) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-6));
}

namespace {

int64_t hidden_dim(const BlockOptions& options) {
  return static_cast<int64_t>(static_cast<double>(options.dim) * options.mlp_ratio);
}

}  // namespace

int64_t block_macs(const BlockOptions& options, int64_t tokens) {
  const int64_t dim = options.dim;
  const int64_t projections = tokens * (4 * dim * dim + 2 * dim * hidden_dim(options));
  return projections + 2 * tokens * tokens * dim;
}

int64_t block_activation_floats(const BlockOptions& options, int64_t tokens) {
  const int64_t token_states = tokens * options.dim;
  const int64_t attention_weights = options.num_heads * tokens * tokens;
  int64_t floats = 8 * token_states + 2 * tokens * hidden_dim(options) + attention_weights;
  if (options.drop > 0.0) floats += 3 * token_states + tokens * hidden_dim(options);
  if (options.attn_drop > 0.0) floats += attention_weights;
  return floats;
}

namespace {

torch::Tensor scaled(LayerScale& scale, const torch::Tensor& x) { return scale.is_empty() ? x : scale(x); }

}  // namespace

BlockImpl::BlockImpl(const BlockOptions& options) {
  norm1_ = register_module("norm1", vit_layer_norm(options.dim));
  attn_ = register_module("attn", Attention(AttentionOptions{options.dim, options.num_heads, options.qkv_bias,
                                                             options.attn_drop, options.drop}));
  if (options.layer_scale_init > 0.0) {
    ls1_ = register_module("ls1", LayerScale(options.dim, options.layer_scale_init));
  }
  drop_path1_ = register_module("drop_path1", DropPath(options.drop_path));
  norm2_ = register_module("norm2", vit_layer_norm(options.dim));
  mlp_ = register_module("mlp", Mlp(MlpOptions{options.dim, hidden_dim(options), options.drop}));
  if (options.layer_scale_init > 0.0) {
    ls2_ = register_module("ls2", LayerScale(options.dim, options.layer_scale_init));
  }
  drop_path2_ = register_module("drop_path2", DropPath(options.drop_path));
}

bool BlockImpl::branches_unscaled() const {
  return ls1_.is_empty() && ls2_.is_empty() &&
         (!is_training() || (drop_path1_->drop_prob() == 0.0 && drop_path2_->drop_prob() == 0.0));
}

bool BlockImpl::leaves_biases(const torch::Tensor& x) const {
  return branches_unscaled() && attn_->leaves_bias() && mlp_->leaves_bias() && !reads_bf16_values(x) &&
         residual_layer_norm_runs_kernel(x);
}

ResidualStream BlockImpl::add_attention(const torch::Tensor& x, const torch::Tensor& attended,
                                        const torch::Tensor& attended_bias, bool attended_bf16_values) {
  const auto branch = drop_path1_(scaled(ls1_, attended));
  const bool bf16_values_read = reads_bf16_values(x);
  auto [sum, normalized] =
      normalize_for_products({x, branch, attended_bias, attended_bf16_values}, norm2_, bf16_values_read);
  if (bf16_values_read) {
    if (branches_unscaled() && mlp_->leaves_rounding(normalized)) {
      return {sum, mlp_->forward_leaving_rounding(normalized), {}, true};
    }
    return {sum, drop_path2_(scaled(ls2_, mlp_->forward_bf16_values(normalized))), {}, false};
  }
  if (leaves_biases(sum)) {
    auto [product, bias] = mlp_->forward_leaving_bias(normalized);
    return {sum, product, bias, false};
  }
  return {sum, drop_path2_(scaled(ls2_, mlp_(normalized))), {}, false};
}

ResidualStream BlockImpl::forward_stream(const ResidualStream& x, const AttentionMask& mask) {
  const bool bf16_values_read = reads_bf16_values(x.residual);
  const auto [input, normalized] = normalize_for_products(x, norm1_, bf16_values_read);
  if (bf16_values_read) {
    if (branches_unscaled() && attn_->leaves_rounding(normalized, mask)) {
      return add_attention(input, attn_->forward_leaving_rounding(normalized, mask), {}, true);
    }
    return add_attention(input, attn_->forward_bf16_values(normalized, mask));
  }
  if (leaves_biases(input)) {
    const auto [product, bias] = attn_->forward_leaving_bias(normalized, mask);
    return add_attention(input, product, bias);
  }
  return add_attention(input, attn_(normalized, mask));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, const AttentionMask& mask) {
  return forward_stream({x, {}, {}, false}, mask).value();
}

std::pair<torch::Tensor, torch::Tensor> BlockImpl::forward_with_attention(const torch::Tensor& x,
                                                                          const AttentionMask& mask) {
  auto [attended, weights] = attn_->forward_with_weights(norm1_(x), mask);
  return {add_attention(x, attended).value(), weights};
}

torch::Tensor forward_blocks(std::vector<Block>& blocks, const torch::Tensor& x, torch::nn::LayerNorm& final_norm,
                             const AttentionMask& mask) {
  ResidualStream stream{x, {}, {}, false};
  for (auto& block : blocks) stream = block->forward_stream(stream, mask);
  if (final_norm.is_empty()) return stream.value();
  return normalize(stream, final_norm, stream.residual.scalar_type()).normalized;
}

}  // namespace vit::models
