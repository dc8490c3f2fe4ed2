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

int64_t block_macs(const BlockOptions& options, int64_t tokens) { return block_macs(options, tokens, tokens); }

int64_t block_macs(const BlockOptions& options, int64_t tokens, int64_t queries) {
  const int64_t dim = options.dim;
  const int64_t keys_and_values = tokens * 2 * dim * dim;
  const int64_t per_query = 2 * dim * dim + 2 * dim * hidden_dim(options) + 2 * tokens * dim;
  return keys_and_values + queries * per_query;
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

torch::Tensor scaled(LayerScale* scale, const torch::Tensor& x) {
  return scale == nullptr || scale->is_empty() ? x : (*scale)(x);
}

}  // namespace

ResidualBranch mlp_branch(Mlp& mlp, const torch::Tensor& sum, const torch::Tensor& normalized, bool bf16_values_read,
                          bool unscaled) {
  if (bf16_values_read) {
    if (unscaled && mlp->leaves_rounding(normalized)) {
      return ResidualBranch::of_bf16_values(mlp->forward_leaving_rounding(normalized));
    }
    return mlp->forward_bf16_values(normalized);
  }
  if (unscaled && mlp->leaves_bias() && residual_layer_norm_runs_kernel(sum)) {
    auto [product, bias] = mlp->forward_leaving_bias(normalized);
    return ResidualBranch::with_bias(product, bias);
  }
  return mlp(normalized);
}

ResidualBranch with_drop_path(DropPath& drop_path, const ResidualBranch& branch, LayerScale* scale) {
  if (!branch.bias.defined() && !branch.bf16_values) return drop_path(scaled(scale, branch.value));
  const auto dtype = branch.bf16_values ? torch::kBFloat16 : branch.value.scalar_type();
  return branch.times(drop_path->sample_factors(branch.value, dtype));
}

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

bool BlockImpl::without_layer_scale() const { return ls1_.is_empty() && ls2_.is_empty(); }

bool BlockImpl::attention_leaves_bias(const torch::Tensor& x) const {
  return without_layer_scale() && attn_->leaves_bias() && !reads_bf16_values(x) && residual_layer_norm_runs_kernel(x);
}

ResidualStream BlockImpl::add_attention(const torch::Tensor& x, const ResidualBranch& attended) {
  const bool bf16_values_read = reads_bf16_values(x);
  const auto [sum, normalized] =
      normalize_for_products({x, with_drop_path(drop_path1_, attended, &ls1_)}, norm2_, bf16_values_read);
  const auto branch = mlp_branch(mlp_, sum, normalized, bf16_values_read, without_layer_scale());
  return {sum, with_drop_path(drop_path2_, branch, &ls2_)};
}

ResidualStream BlockImpl::forward_stream(const ResidualStream& x, const AttentionMask& mask) {
  const bool bf16_values_read = reads_bf16_values(x.residual);
  const auto [input, normalized] = normalize_for_products(x, norm1_, bf16_values_read);
  if (bf16_values_read) {
    if (without_layer_scale() && attn_->leaves_rounding(normalized, mask)) {
      return add_attention(input, ResidualBranch::of_bf16_values(attn_->forward_leaving_rounding(normalized, mask)));
    }
    return add_attention(input, attn_->forward_bf16_values(normalized, mask));
  }
  if (attention_leaves_bias(input)) {
    auto [product, bias] = attn_->forward_leaving_bias(normalized, mask);
    return add_attention(input, ResidualBranch::with_bias(product, bias));
  }
  return add_attention(input, attn_(normalized, mask));
}

torch::Tensor BlockImpl::forward_first_tokens(const ResidualStream& x, int64_t tokens) {
  const auto [input, normalized] = normalize_for_products(x, norm1_, reads_bf16_values(x.residual));
  const auto sum =
      input.narrow(1, 0, tokens) + drop_path1_(scaled(&ls1_, attn_->forward_first_queries(normalized, tokens)));
  return sum + drop_path2_(scaled(&ls2_, mlp_(norm2_(sum))));
}

torch::Tensor BlockImpl::forward(const torch::Tensor& x, const AttentionMask& mask) {
  return forward_stream({x, {}}, mask).value();
}

std::pair<torch::Tensor, torch::Tensor> BlockImpl::forward_with_attention(const torch::Tensor& x,
                                                                          const AttentionMask& mask) {
  auto [attended, weights] = attn_->forward_with_weights(norm1_(x), mask);
  return {add_attention(x, attended).value(), weights};
}

torch::Tensor forward_blocks(std::vector<Block>& blocks, const torch::Tensor& x, torch::nn::LayerNorm& final_norm,
                             const AttentionMask& mask) {
  ResidualStream stream{x, {}};
  for (auto& block : blocks) stream = block->forward_stream(stream, mask);
  if (final_norm.is_empty()) return stream.value();
  return normalize(stream, final_norm, stream.residual.scalar_type()).normalized;
}

torch::Tensor forward_blocks_to_first_tokens(std::vector<Block>& blocks, const torch::Tensor& x,
                                             torch::nn::LayerNorm& final_norm, int64_t tokens) {
  auto first = x.narrow(1, 0, tokens);
  if (!blocks.empty()) {
    ResidualStream stream{x, {}};
    for (size_t i = 0; i + 1 < blocks.size(); ++i) stream = blocks[i]->forward_stream(stream);
    first = blocks.back()->forward_first_tokens(stream, tokens);
  }
  return final_norm.is_empty() ? first : final_norm(first);
}

}  // namespace vit::models
