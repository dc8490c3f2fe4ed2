#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>

namespace vit::models::blas {

// Whether the process has an exported system BLAS for the kernels below.
bool system_blas_available();

// Whether the kernels below may stand in for LibTorch's fp32 CPU products here: the process has
// an exported system BLAS, and neither CPU autocast (which would run the product in its lower
// precision) nor the TorchScript tracer (which cannot record them) is active.
bool kernels_apply();

// Row-major C[m, n] = alpha · op(A)[m, k] · op(B)[k, n] on the calling thread when made inside
// at::parallel_for: one BLAS call, or for an attention head's products on CPUs with AVX-512,
// unpacked_gemm (models/kernels/unpacked_gemm.h). A is stored row-major with leading dimension lda, as [m, k],
// or as [k, m] when transpose_a; likewise B. C is overwritten.
void gemm(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, bool transpose_a, const float* b,
          int64_t ldb, bool transpose_b, float* c, int64_t ldc);

// Calls multiply(i) for every i in [0, count), each a product of about multiply_adds_each
// multiply-adds, the calls divided among the intra-op threads in tasks big enough to be worth
// handing to a thread. Inside the parallel region the BLAS keeps each call on its thread.
template <typename Multiply>
void for_each_product(int64_t count, int64_t multiply_adds_each, const Multiply& multiply) {
  constexpr int64_t kMinMultiplyAddsPerTask = 1 << 16;
  const int64_t grain = std::max<int64_t>(1, kMinMultiplyAddsPerTask / std::max<int64_t>(1, multiply_adds_each));
  at::parallel_for(0, count, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) multiply(i);
  });
}

}  // namespace vit::models::blas
