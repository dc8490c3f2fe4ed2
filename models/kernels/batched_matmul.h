#pragma once

#include <ATen/core/Tensor.h>

namespace vit::models {

// a [..., M, K] @ b [..., K, N] with torch::matmul's result and gradients.
//
// Attention multiplies B·H small matrices at once. LibTorch 1.13's bmm makes one BLAS call per
// matrix on the calling thread, each call split over the intra-op threads (which for a 17×32
// matrix costs more in synchronisation than in arithmetic), and copies permuted q/k/v first.
// Here, for fp32 CPU tensors outside autocast and tracing, each matrix is one single-threaded
// BLAS call on the operands' own strides and the matrices are divided among the intra-op
// threads; so are bf16 products (under bf16 autocast, or of bf16 operands) where bf16_products()
// sends them to the fp32 kernels. Anything else (other dtypes or devices, broadcast batch shapes, a
// LibTorch without an exported sgemm_) goes to torch::matmul.
at::Tensor batched_matmul(const at::Tensor& a, const at::Tensor& b);

}  // namespace vit::models
