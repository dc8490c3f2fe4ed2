#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/BFloat16.h>

namespace vit::models {

// softmax(scale · x) over the last dimension, in x's dtype, differentiable with respect to x.
//
// Attention's softmax runs over short rows (17 to a few hundred keys), where LibTorch 1.13's CPU
// kernel spends ~2 ns per element (fp32 or bf16) on per-row loop tails and passes; a scaled
// softmax would also multiply the scores first. For contiguous fp32 and bf16 CPU tensors on a
// CPU with AVX2 and FMA, each row here is one max pass, one exp-and-sum pass and one scaling pass
// over 8-float vectors, in fp32 (bf16 read and written with one rounding), the scale applied
// inside the exponent; the gradient likewise, one row at a time. Elsewhere (other dtypes or
// devices, older CPUs) it is LibTorch's softmax of the scaled scores. `scale` must be positive.
// Rows run on the calling thread: on the CPU a batch slice owns its core.
at::Tensor scaled_softmax(const at::Tensor& x, double scale);

// The same without autograd, for kernels that own their backward: y = softmax(scale · x + bias)
// and, from the output y and its gradient, the gradient with respect to x (the bias's is the sum
// of x's over the rows that took each bias row). The bias, optional, is contiguous fp32 rows as
// long as x's, repeated over x's rows: row r of x takes bias row r mod (bias rows), as x
// [B, G, H, N, N] + bias [G, H, N, N] broadcasts. Added in fp32 before the max is taken.
at::Tensor scaled_softmax_forward(const at::Tensor& x, double scale, const at::Tensor& bias = {});
at::Tensor scaled_softmax_backward(const at::Tensor& grad_y, const at::Tensor& y, double scale);

// Single rows, for kernels that keep scores in buffers of their own (amx_attention), on CPUs with
// AVX-512 (BF16; softmax_row_kernels_available()): 16 floats a vector, the same exponential as
// above. y[0, n) = softmax(scale · x + bias) of n fp32 scores (bias a row of n floats or null; y
// may not overlap x), and dx[0, n) = scale · y ⊙ (dy − Σ dy ⊙ y) from bf16 weights y; each also
// written rounded to bf16 into rounded[0, padded), zeros from n on (padded a multiple of 16, >= n).
bool softmax_row_kernels_available();
void scaled_softmax_row(const float* x, const float* bias, float* y, c10::BFloat16* rounded, int64_t n, int64_t padded,
                        float scale);
void scaled_softmax_backward_row(const float* dy, const c10::BFloat16* y, float* dx, c10::BFloat16* rounded, int64_t n,
                                 int64_t padded, float scale);

}  // namespace vit::models
