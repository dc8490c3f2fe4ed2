#pragma once

#include <ATen/core/Tensor.h>

namespace vit::models {

// Whether fused_attention can take this fused qkv projection [B, N, 3·D]: a contiguous CPU tensor,
// fp32 with the system BLAS available and no autocast active, or bf16; not while tracing.
bool fused_attention_applies(const at::Tensor& qkv);

// softmax(Q K^T · scale + bias) V for every head of the fused qkv projection [B, N, 3·D] (D = heads ·
// head_dim, laid out as timm's [3, heads, head_dim]), returned with the heads side by side as the
// output projection takes them, [B, N, D]; differentiable with respect to qkv.
//
// One autograd node for the whole product, for LibTorch releases without a fused attention
// kernel: the per-head products read q, k and v where the projection wrote them and write the
// heads' outputs (and, backwards, q, k and v's gradients) straight into the merged layout, each
// product one BLAS call, the products divided among the intra-op threads. That leaves out the
// copies of the permuted heads, the scaling of q, and the re-stacking of the gradients. In bf16,
// where bf16_products() sends bf16 products to the fp32 BLAS kernels, the fp32 node takes qkv's
// values in fp32 (scores and softmax in fp32, the output rounded to bf16); otherwise q, k and v are
// copied once, head-major, for LibTorch's batched products, which then read k and v transposed in
// place; the scale goes into the softmax, and q, k and v's gradients are written head-major and put
// back in one copy.
//
// An additive bias, optional, goes onto the scaled scores before the softmax: [G, heads | 1, N, N]
// with G dividing the batch, sequence b taking bias[b mod G] (Swin's relative position bias, with
// the shifted-window mask of window b mod G folded in); added in fp32 inside the softmax and
// differentiable too.
at::Tensor fused_attention(const at::Tensor& qkv, int64_t num_heads, double scale, const at::Tensor& bias = {});

// Where bf16 products run on the fp32 kernels (bf16_products_on_blas): the node's fp32 path between
// the qkv projection's product (fp32, or bf16) and the output projection's, as autocast computes
// it — q, k and v rounded to bf16 values, scores and softmax in fp32, the output rounded to bf16 and
// returned as bf16 values in fp32, ready for the next product; the output's incoming gradient and
// q, k and v's gradients rounded to bf16 as autocast's casts round them. For a head that
// unpacked_gemm takes, the output and q, k and v's gradients are rounded as the products write them.
// `qkv_bias` (optional, fp32 [3·D], for an fp32 qkv): the projection's bias, left out of its
// product, added where qkv is rounded (one rounding of the fp32 sum, as the product with the bias
// would give), differentiable; the addmm's copy of the bias into every row goes.
at::Tensor attention_between_bf16_products(const at::Tensor& qkv, int64_t num_heads, double scale,
                                           const at::Tensor& bias = {}, const at::Tensor& qkv_bias = {});

}  // namespace vit::models
