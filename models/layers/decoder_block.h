#pragma once

#include "models/layers/dropout.h"
#include "models/layers/mlp.h"
#include "models/layers/multihead_attention.h"

#include <torch/nn/modules/normalization.h>

namespace vit::models {

struct DecoderBlockOptions {
  int64_t dim;
  int64_t num_heads;
  double mlp_ratio = 4.0;
  double drop = 0.0;
  double attn_drop = 0.0;
};

// Pre-norm Transformer decoder block with positions added at every layer (DETR's
// normalize_before variant): the queries attend to each other, then to the memory, then an MLP.
//   x = x + self_attn(q = k = norm1(x) + query_pos, v = norm1(x))
//   x = x + cross_attn(q = norm2(x) + query_pos, k = memory + memory_pos, v = memory)
//   x = x + mlp(norm3(x))
class DecoderBlockImpl : public torch::nn::Module {
 public:
  explicit DecoderBlockImpl(const DecoderBlockOptions& options);
  // x, query_pos [B|1, Q, D]; memory, memory_pos [B|1, N, D] -> [B, Q, D].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& query_pos, const torch::Tensor& memory,
                        const torch::Tensor& memory_pos);

 private:
  torch::nn::LayerNorm norm1_{nullptr};
  MultiheadAttention self_attn_{nullptr};
  Dropout drop1_{nullptr};
  torch::nn::LayerNorm norm2_{nullptr};
  MultiheadAttention cross_attn_{nullptr};
  Dropout drop2_{nullptr};
  torch::nn::LayerNorm norm3_{nullptr};
  Mlp mlp_{nullptr};
};
TORCH_MODULE(DecoderBlock);

// Multiply-accumulates of one decoder block for `queries` queries over `memory` tokens.
int64_t decoder_block_macs(const DecoderBlockOptions& options, int64_t queries, int64_t memory);

}  // namespace vit::models
