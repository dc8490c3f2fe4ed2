#pragma once

#include <ATen/core/Tensor.h>

namespace vit::models {

// Which kernels run the CPU's bf16 matrix products (bf16 autocast's linear layers, attention's
// per-head products).
//
// LibTorch hands them to oneDNN, whose bf16 products are fast on CPUs with AMX. Without AMX they
// run at about half the rate of the system BLAS's fp32 kernels on the same core (AVX512-BF16:
// ~73 against ~130 GFLOP/s), and far below it on CPUs without bf16 instructions. There the same
// products run faster as fp32 products of bf16 values: each operand rounded to bf16 (and then exact
// in fp32), the sums accumulated in fp32, the result rounded to bf16 — what oneDNN's bf16 kernels
// compute, with the sums in another order. Gradients are rounded where autocast's casts round them.
enum class Bf16Products { kOneDnn, kFp32Blas };

// Process-wide; kOneDnn (LibTorch's own choice) until the application chooses at start-up.
void set_bf16_products(Bf16Products products);
Bf16Products bf16_products();

// Whether a bf16 product of these CPU operands goes to the system BLAS's fp32 kernels: kFp32Blas is
// chosen, the process has an exported system BLAS, and the TorchScript tracer (which would record
// fp32 products in an exported bf16 graph) is off.
bool bf16_products_on_blas(const at::Tensor& operand);

// x rounded to bf16 and held in fp32, differentiable; its gradient is rounded to bf16 too and
// returned in x's dtype, as autocast's cast of x to bf16 would return it. An undefined x (a layer
// without a bias) stays undefined.
at::Tensor bf16_values(const at::Tensor& x);

// bf16(x + bias) held in fp32, for an fp32 x [..., C] and an fp32 bias [C] added to every row: the
// fp32 sum rounded once, in one pass. Not differentiable: for the nodes that round their input
// inside (a product's output whose bias they add).
at::Tensor bf16_values_of_sum(const at::Tensor& x, const at::Tensor& bias);

}  // namespace vit::models
