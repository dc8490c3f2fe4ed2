#pragma once

#include <ATen/core/Tensor.h>

namespace vit::models {

// Whether linear_gelu takes this layer here: a CPU with AVX-512, fp32 operands outside autocast
// and the TorchScript tracer (which records LibTorch's operators only), an inner dimension up to
// 4096 and a product of at least 2^20 multiply-adds.
bool linear_gelu_applies(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias);

// GELU(input[..., K] · weight[N, K]ᵀ + bias[N]) in fp32 (bias may be undefined; GELU in the erf
// form, as torch::gelu computes it), differentiable in all three: an MLP's first layer and its
// activation in one pass over the hidden activations each way.
//
// Unfused, LibTorch copies the broadcast bias into the product's output and has the BLAS add the
// product to it; GELU then reads that output and writes its own (LibTorch's AVX2 kernel on this
// Debian build). Here each 6 × 64 tile of the output is summed in registers over the whole inner
// dimension (the weight packed once per call into 64-column panels, the input read in place) and
// written once, with the bias added and GELU applied; where a gradient is recorded, GELU's
// derivative is written beside it (computed from the same Φ and φ), so that the backward's only
// element-wise work is a product with it; then LibTorch's products (dX = dH·W, dW = dHᵀ·X) and
// bias sum, as torch::linear's backward runs them.
// Must only be called where linear_gelu_applies.
at::Tensor linear_gelu(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias);

}  // namespace vit::models
