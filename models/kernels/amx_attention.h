#pragma once

#include <ATen/core/Tensor.h>

#include <utility>

namespace vit::models {

// Attention's six per-head products in bf16 on AMX's tile units, for fused_attention's bf16 node.
//
// LibTorch sends a bf16 batched product to oneDNN, which on these head sizes ([197, 64]: 2.5 M
// multiply-adds each) runs at a fraction of its rate on large products (145-185 against 340-520
// GFLOP/s a core for ViT-S/16's linear layers on a 2-core Xeon with AMX), and the heads must first
// be copied head-major out of the qkv projection. Here each head is one task on its thread: q, k, v
// (and the output's gradient) are read where the projection wrote them into small packed buffers,
// the scores stay in fp32 through the softmax (oneDNN rounds them to bf16 first), the weights are
// rounded to bf16 once for the next product, and outputs are written straight into the merged
// layouts. Sums are fp32, as oneDNN's.

// Whether the functions below take a bf16 attention with heads of head_dim: the process may use
// the tile units (amx.h), the CPU has softmax.h's row kernels, and head_dim is even. fused_attention's
// bf16 node then runs them on heads of every size: with the 16-float softmax rows, small heads gain
// too, although their tokens are padded to 16 and 32 (alternating bf16 steps of one process, one
// thread: the CIFAR-size ViT's [65, 32] heads +5 % training and +15 % evaluation, the 50-token
// model +4 % training, the default model's [17, 32] +1.5 % training and +13 % evaluation; ViT-Ti/16's
// [197, 64] +5 %).
bool amx_attention_applies(int64_t head_dim);

// What the forward keeps for the backward: each head's bf16 softmax weights, padded with zeros to
// [pairs, R, K] (R = tokens rounded up to 16, K to 32), as they are and transposed (keys by
// queries).
struct AmxAttentionWeights {
  at::Tensor weights, transposed;
};

// softmax(Q K^T · scale + bias) V of every head of a contiguous bf16 qkv [B, N, 3·D] (timm's
// [3, heads, head_dim] layout), returned bf16 with the heads merged, [B, N, D], with the weights for
// the backward where keep_weights (else they stay in per-thread buffers, are never transposed,
// and come back undefined: no backward follows). bias: undefined, or contiguous fp32
// [G, heads, N, N] with G dividing B, sequence b taking bias[b mod G]. Without autograd:
// fused_attention calls it, through its node where gradients are wanted.
std::pair<at::Tensor, AmxAttentionWeights> amx_attention_forward(const at::Tensor& qkv, int64_t num_heads, double scale,
                                                                 const at::Tensor& bias, bool keep_weights = true);

// qkv's bf16 gradient from the output's (bf16 [B, N, D]) and, where score_gradient, the gradient of
// the scores before scaling (fp32 [B·heads, N, N]: `scale` times the logits', which the bias takes).
std::pair<at::Tensor, at::Tensor> amx_attention_backward(const at::Tensor& grad_out, const at::Tensor& qkv,
                                                         const AmxAttentionWeights& saved, int64_t num_heads,
                                                         double scale, bool score_gradient);

}  // namespace vit::models
