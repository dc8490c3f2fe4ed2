#pragma once

#include <cstdint>

namespace vit::models {

// Whether unpacked_gemm takes a product of these sizes on this CPU: AVX-512, and a product the size
// of one attention head's (ViT-Ti/16's [197, 64] heads: 2.5 M multiply-adds each), whose operands
// fit in the core's L2. Smaller products go to the BLAS's own small-matrix kernels, which read
// their operands unpacked too; larger ones need the BLAS's blocking.
bool unpacked_gemm_applies(int64_t m, int64_t n, int64_t k);

// Row-major C[m, n] = alpha · op(A)[m, k] · op(B)[k, n], as blas::gemm: A stored row-major with
// leading dimension lda, as [m, k] or as [k, m] when transpose_a; likewise B. C is overwritten,
// with each element rounded to bf16 (held in fp32, as c10::BFloat16 rounds) where rounds_to_bf16:
// the rounding that autocast's cast of a bf16 product would make, done as the product is written.
//
// OpenBLAS copies both operands into packed panels before each product and zeroes C first: for a
// head's products, whose inner dimension is 64 or 197, a large share of their time. Here A is read
// in place (its elements broadcast one at a time, in either layout), B is read in place row by row
// (a transposed B is copied once, 16 × 16 blocks at a time, into a per-thread buffer), and each
// tile of C, 6 × 64 or 8 × 48, is summed in registers over the whole inner dimension, in order,
// and written once. ViT-Ti/16's six products per head on one core (Xeon, AVX-512): 124–173 GFLOP/s
// against OpenBLAS's 110–141 (docs/performance.md). Must only be called where unpacked_gemm_applies.
void unpacked_gemm(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, bool transpose_a,
                   const float* b, int64_t ldb, bool transpose_b, float* c, int64_t ldc, bool rounds_to_bf16 = false);

}  // namespace vit::models
