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

// GELU of a linear layer's output whose bias is not yet added: bf16(gelu(bf16(product + bias))), for
// a product [..., N] and an fp32 bias [N], in the product's dtype. Where the products run on the
// fp32 kernels the product is fp32 and unrounded, and the result bf16 values held in fp32, as
// gelu_of_bf16_values gives them; on oneDNN's bf16 kernels both are bf16. Differentiable in both:
// the product's gradient is bf16(bf16(grad) · gelu'(bf16(product + bias))) in its dtype, the bias's
// the fp32 sum of those rows.
//
// Unfused, LibTorch's addmm first writes the bias into every row of its output and then adds the
// product to it, and backward sums the gradient's rows in a pass of its own (under bf16 autocast
// widening the whole bf16 gradient to fp32): two passes over the hidden activations (ViT-Ti/16's
// fc1: 1.3 ms of each layer's step on one thread) that GELU's own pass takes here. On the fp32
// kernels the pre-activation is rounded once, as there unfused (the fp32 sum of product and bias,
// rounded to bf16); on oneDNN's it is rounded twice (the product to bf16, then its sum with the
// bias) where addmm rounds once, the bias enters in fp32 where autocast rounds it to bf16 first,
// and its gradient is summed and returned in fp32 where autocast's is rounded to bf16. For a CPU
// with AVX512-BF16; otherwise LibTorch's add and GELU.
at::Tensor gelu_of_bf16_product_plus_bias(const at::Tensor& product, const at::Tensor& bias);

// Whether adding the bias in GELU's pass pays for a product of this many elements: where they outgrow
// a core's L2 cache (2^20 bf16: 2 MiB), so that the passes it saves go to memory. Measured in
// alternating bf16 training steps of one process (one thread, a core's batch slice), on oneDNN's
// products: ViT-Ti/16 +3 % (2.4 M elements), the CIFAR-size ViT +1 to +3 % (4.3 M); the 50-token
// model (0.8 M) and the default model (0.3 M) ±1 %.
bool bias_in_gelu_pays(int64_t product_elements);

// Whether this CPU runs gelu_of_bf16_values and gelu_of_bf16_product_plus_bias fused.
bool gelu_of_bf16_values_vectorized();

// The tables both passes look GELU up in, indexed by a bf16's bits, for kernels that apply GELU as
// they write a product (amx_linear.h's amx_mlp): bf16(gelu(x)) held in fp32, and gelu'(x) in fp32.
const float* gelu_of_bf16_table();
const float* gelu_derivative_of_bf16_table();

}  // namespace vit::models
