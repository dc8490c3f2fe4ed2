#pragma once

#include <ATen/core/Tensor.h>

namespace vit::models {

// GELU between two bf16 products. Where they run as fp32 products of bf16 values (bf16_products.h),
// `hidden` is the first product in fp32, unrounded, and the result is bf16(gelu(bf16(hidden))) held
// in fp32, ready to be the second product's operand; where they run on oneDNN's bf16 kernels,
// `hidden` is the product in bf16 and so is the result. Differentiable: the gradient is
// bf16(bf16(grad) · gelu'(bf16(hidden))) in the dtype of `hidden`, what autocast's casts and
// LibTorch's bf16 GELU return, so the values are those of the unfused layers (Φ to fp32 precision,
// where LibTorch's bf16 GELU is a bf16 unit off on ~1 % of values; a result may differ by one bf16
// rounding where it lands next to a tie).
//
// Unfused, the first product's rounding to bf16, the bf16 GELU and the second product's widening
// of its operand to fp32 are three passes over the hidden activations, and three more backward;
// here one each way, with bf16(hidden) kept for backward (in bf16). On bf16 the pass is LibTorch's
// GELU's, with a lookup in place of erf (oneDNN's GELU computes one per value, forward and
// backward). For a CPU with AVX512-BF16; otherwise LibTorch's casts and GELU, unfused.
at::Tensor gelu_of_bf16_values(const at::Tensor& hidden);

// Whether this CPU runs gelu_of_bf16_values fused.
bool gelu_of_bf16_values_vectorized();

}  // namespace vit::models
