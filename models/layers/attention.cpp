#include "models/layers/attention.h"

#include "models/kernels/autocast_state.h"
#include "models/kernels/batched_matmul.h"
#include "models/kernels/bf16_products.h"
#include "models/kernels/fused_attention.h"
#include "models/kernels/softmax.h"

#include <torch/version.h>

#include <cmath>
#include <limits>

namespace vit::models {
namespace {

// Bool [B|1, 1, N|1, N] marking the (query, key) pairs that must get zero weight, or undefined.
torch::Tensor blocked_pairs(const AttentionMask& mask, int64_t num_tokens, const torch::Device& device) {
  torch::Tensor blocked;
  if (mask.key_padding.defined()) {
    blocked = mask.key_padding.to(device, torch::kBool).unsqueeze(1).unsqueeze(2);
  }
  if (mask.causal) {
    const auto future = torch::ones({num_tokens, num_tokens}, torch::dtype(torch::kBool).device(device)).triu(1);
    blocked = blocked.defined() ? blocked.logical_or(future) : future;
  }
  return blocked;
}

// scores [B, H, N, N] + bias [G, H|1, N, N], sequence b taking bias[b % G].
torch::Tensor add_bias(const torch::Tensor& scores, const torch::Tensor& bias) {
  const auto groups = bias.size(0);
  if (groups == 1) return scores + bias;
  const auto n = scores.size(-1);
  return (scores.view({-1, groups, scores.size(1), n, n}) + bias).flatten(0, 1);
}

}  // namespace

AttentionImpl::AttentionImpl(const AttentionOptions& options)
    : num_heads_(options.num_heads),
      head_dim_(options.dim / options.num_heads),
      scale_(1.0 / std::sqrt(static_cast<double>(options.dim / options.num_heads))) {
  TORCH_CHECK(options.num_heads > 0 && options.dim % options.num_heads == 0, "Attention: dim ", options.dim,
              " is not divisible by num_heads ", options.num_heads);
  qkv_ = register_module("qkv", Linear(torch::nn::LinearOptions(options.dim, 3 * options.dim).bias(options.qkv_bias)));
  attn_drop_ = register_module("attn_drop", Dropout(options.attn_drop));
  proj_ = register_module("proj", Linear(options.dim, options.dim));
  proj_drop_ = register_module("proj_drop", Dropout(options.proj_drop));
}

std::vector<torch::Tensor> AttentionImpl::split_heads(const torch::Tensor& projection, int64_t parts) {
  // [B, N, parts x D] -> [B, N, parts, H, Dh] -> [parts, B, H, N, Dh]
  return projection.unflatten(-1, {parts, num_heads_, head_dim_}).permute({2, 0, 3, 1, 4}).unbind(0);
}

torch::Tensor AttentionImpl::project(const torch::Tensor& merged) { return proj_drop_(proj_(merged)); }

torch::Tensor AttentionImpl::merge_heads(const torch::Tensor& per_head) { return per_head.transpose(1, 2).flatten(2); }

std::pair<torch::Tensor, torch::Tensor> AttentionImpl::attend(const torch::Tensor& qkv, const AttentionMask& mask) {
  const auto heads = split_heads(qkv, 3);
  return attend_heads(heads[0], heads[1], heads[2], mask);
}

std::pair<torch::Tensor, torch::Tensor> AttentionImpl::attend_heads(const torch::Tensor& q, const torch::Tensor& k,
                                                                    const torch::Tensor& v, const AttentionMask& mask) {
  // The scale goes into the softmax, unless a bias is added to the scaled scores.
  const bool biased = mask.bias.defined();
  auto scores = batched_matmul(biased ? q * scale_ : q, k.transpose(-2, -1));
  if (biased) scores = add_bias(scores, mask.bias);
  if (const auto blocked = blocked_pairs(mask, k.size(2), k.device()); blocked.defined()) {
    scores = scores.masked_fill(blocked, -std::numeric_limits<double>::infinity());
  }
  const auto weights = scaled_softmax(scores, biased ? 1.0 : scale_);
  return {merge_heads(batched_matmul(attn_drop_(weights), v)), weights};
}

// An additive bias goes into the fused node; masks that block pairs, and a dropout of the weights,
// take the products one by one.
bool AttentionImpl::fuses(const AttentionMask& mask) const {
  return !mask.key_padding.defined() && !mask.causal && !(is_training() && attn_drop_->p() > 0.0);
}

// Where the products run on the fp32 kernels, the qkv projection and the heads' output stay in fp32
// from product to product, rounded to bf16 values where autocast would cast them to bf16 and the
// next product would cast them back (attention_between_bf16_products): the same values, fewer passes.
bool AttentionImpl::attends_bf16_values(const torch::Tensor& x, const AttentionMask& mask) const {
  return TORCH_VERSION_MAJOR < 2 && fuses(mask) && x.dim() == 3 && x.numel() > 0 &&
         linear_input_dtype(x) == torch::kBFloat16 && bf16_products_on_blas(x);
}

// qkv's bias goes to the node, which adds it as it rounds qkv (rounded to bf16 first, as
// product_of_bf16_values rounds a bias, its gradient too).
torch::Tensor AttentionImpl::attend_bf16_values(const torch::Tensor& x_values, const torch::Tensor& bias) {
  const auto qkv = product_of_bf16_values(x_values, qkv_->weight, torch::Tensor());
  const auto qkv_bias = bf16_values(qkv_->bias);
  return attention_between_bf16_products(qkv, num_heads_, scale_, bias, qkv_bias);
}

torch::Tensor AttentionImpl::projection_of_bf16_values(const torch::Tensor& x_values, const AttentionMask& mask) {
  return product_of_bf16_values(attend_bf16_values(x_values, mask.bias), proj_->weight, proj_->bias);
}

torch::Tensor AttentionImpl::projected_bf16_values(const torch::Tensor& x_values, const AttentionMask& mask) {
  return proj_drop_(projection_of_bf16_values(x_values, mask).to(torch::kBFloat16));
}

std::pair<torch::Tensor, torch::Tensor> AttentionImpl::forward_with_weights(const torch::Tensor& x,
                                                                            const AttentionMask& mask) {
  const auto [merged, weights] = attend(qkv_(x), mask);
  return {project(merged), weights};
}

torch::Tensor AttentionImpl::merged_heads(const torch::Tensor& x, const AttentionMask& mask) {
  const auto qkv = qkv_(x);
#if TORCH_VERSION_MAJOR >= 2
  const auto heads = split_heads(qkv, 3);
  const auto &q = heads[0], &k = heads[1], &v = heads[2];
  const double dropout = is_training() ? attn_drop_->p() : 0.0;
  // The fused kernel draws from the default generator; a slice's own generator needs the explicit path.
  if (dropout > 0.0 && LayerRandomness::current()) return attend_heads(q, k, v, mask).first;
  if (mask.bias.defined()) {
    // The fused kernel takes an additive mask of the scores' own shape and the queries' dtype.
    auto additive = add_bias(torch::zeros({q.size(0), q.size(1), q.size(2), q.size(2)}, q.options()), mask.bias)
                        .to(q.scalar_type());
    if (const auto blocked = blocked_pairs(mask, x.size(1), x.device()); blocked.defined()) {
      additive = additive.masked_fill(blocked, -std::numeric_limits<double>::infinity());
    }
    return merge_heads(at::scaled_dot_product_attention(q, k, v, additive, dropout, false));
  }
  if (mask.key_padding.defined()) {
    // The fused kernel's boolean mask marks the pairs that take part, the inverse of ours.
    const auto allowed = blocked_pairs(mask, x.size(1), x.device()).logical_not();
    return merge_heads(at::scaled_dot_product_attention(q, k, v, allowed, dropout, false));
  }
  return merge_heads(at::scaled_dot_product_attention(q, k, v, {}, dropout, mask.causal));
#else
  if (fuses(mask) && fused_attention_applies(qkv)) return fused_attention(qkv, num_heads_, scale_, mask.bias);
  return attend(qkv, mask).first;
#endif
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const AttentionMask& mask) {
  if (attends_bf16_values(x, mask)) return projected_bf16_values(bf16_values(x), mask);
  return project(merged_heads(x, mask));
}

bool AttentionImpl::leaves_bias() const { return proj_->bias.defined() && (proj_drop_->p() == 0.0 || !is_training()); }

std::pair<torch::Tensor, torch::Tensor> AttentionImpl::forward_leaving_bias(const torch::Tensor& x,
                                                                            const AttentionMask& mask) {
  TORCH_CHECK(leaves_bias(), "Attention: forward_leaving_bias without a bias to leave, or with a dropout after it");
  return {models::linear(merged_heads(x, mask), proj_->weight, torch::Tensor()), proj_->bias};
}

torch::Tensor AttentionImpl::forward_bf16_values(const torch::Tensor& x_values, const AttentionMask& mask) {
  if (attends_bf16_values(x_values, mask)) return projected_bf16_values(x_values, mask);
  // Elsewhere the layers take the values as any fp32 input: autocast's cast of them is exact.
  return forward(x_values, mask);
}

bool AttentionImpl::leaves_rounding(const torch::Tensor& x_values, const AttentionMask& mask) const {
  return attends_bf16_values(x_values, mask) && (proj_drop_->p() == 0.0 || !is_training());
}

torch::Tensor AttentionImpl::forward_leaving_rounding(const torch::Tensor& x_values, const AttentionMask& mask) {
  TORCH_CHECK(leaves_rounding(x_values, mask),
              "Attention: forward_leaving_rounding off the fp32 kernels, or with a dropout after it");
  return projection_of_bf16_values(x_values, mask);
}

torch::Tensor AttentionImpl::forward_first_queries(const torch::Tensor& x, int64_t queries) {
  // The rows of qkv's weight and bias that make the queries, then those that make the keys and values.
  const auto dim = num_heads_ * head_dim_;
  const auto rows = [](const torch::Tensor& t, int64_t first, int64_t count) {
    return t.defined() ? t.narrow(0, first, count) : t;
  };
  const auto& weight = qkv_->weight;
  const auto& bias = qkv_->bias;
  const auto q = split_heads(linear(x.narrow(1, 0, queries), rows(weight, 0, dim), rows(bias, 0, dim)), 1)[0];
  const auto kv = split_heads(linear(x, rows(weight, dim, 2 * dim), rows(bias, dim, 2 * dim)), 2);
  return project(attend_heads(q, kv[0], kv[1], {}).first);
}

}  // namespace vit::models
