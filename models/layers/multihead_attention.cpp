#include "models/layers/multihead_attention.h"

#include "models/kernels/batched_matmul.h"
#include "models/kernels/softmax.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace vit::models {

MultiheadAttentionImpl::MultiheadAttentionImpl(const MultiheadAttentionOptions& options)
    : num_heads_(options.num_heads) {
  if (options.num_heads <= 0 || options.dim % options.num_heads != 0) {
    throw std::invalid_argument("attention width " + std::to_string(options.dim) + " is not divisible by " +
                                std::to_string(options.num_heads) + " heads");
  }
  scale_ = 1.0 / std::sqrt(static_cast<double>(options.dim / options.num_heads));
  q_proj_ = register_module("q_proj", Linear(options.dim, options.dim));
  k_proj_ = register_module("k_proj", Linear(options.dim, options.dim));
  v_proj_ = register_module("v_proj", Linear(options.dim, options.dim));
  attn_drop_ = register_module("attn_drop", Dropout(options.attn_drop));
  out_proj_ = register_module("out_proj", Linear(options.dim, options.dim));
}

torch::Tensor MultiheadAttentionImpl::split_heads(const torch::Tensor& x) const {
  // unflatten keeps the batch and token counts symbolic when the model is traced for export.
  return x.unflatten(-1, {num_heads_, x.size(-1) / num_heads_}).transpose(1, 2);
}

torch::Tensor MultiheadAttentionImpl::forward(const torch::Tensor& query, const torch::Tensor& key,
                                              const torch::Tensor& value) {
  const auto q = split_heads(q_proj_(query));
  const auto k = split_heads(k_proj_(key));
  const auto v = split_heads(v_proj_(value));
  // The softmax in fp32 whatever the autocast precision: bf16 scores lose the small differences.
  const auto weights = scaled_softmax(batched_matmul(q, k.transpose(-2, -1)).to(torch::kFloat32), scale_);
  const auto attended = batched_matmul(attn_drop_(weights).to(v.scalar_type()), v);
  return out_proj_(attended.transpose(1, 2).flatten(2));
}

}  // namespace vit::models
