#pragma once

#include <ATen/core/Tensor.h>

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

}  // namespace vit::models
