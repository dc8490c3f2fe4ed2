#include "models/kernels/blas.h"

#include "models/kernels/autocast_state.h"
#include "models/kernels/unpacked_gemm.h"

#include <torch/csrc/jit/frontend/tracer.h>

#include <dlfcn.h>

namespace vit::models::blas {
namespace {

using Sgemm = void(const char* transa, const char* transb, const int* m, const int* n, const int* k, const float* alpha,
                   const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
                   const int* ldc);

// LibTorch calls the system BLAS through its Fortran symbol. Looking the symbol up at run time
// reaches that same library without linking it; builds that keep their BLAS private (the
// PyTorch wheels, which bundle MKL) export none, and their callers keep LibTorch's own products.
Sgemm* system_sgemm() {
  static Sgemm* const sgemm = reinterpret_cast<Sgemm*>(dlsym(RTLD_DEFAULT, "sgemm_"));
  return sgemm;
}

}  // namespace

bool system_blas_available() { return system_sgemm() != nullptr; }

bool kernels_apply() {
  return system_blas_available() && !autocast_enabled(c10::kCPU) && !torch::jit::tracer::isTracing();
}

void gemm(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, bool transpose_a, const float* b,
          int64_t ldb, bool transpose_b, float* c, int64_t ldc) {
  if (unpacked_gemm_applies(m, n, k)) {
    unpacked_gemm(m, n, k, alpha, a, lda, transpose_a, b, ldb, transpose_b, c, ldc);
    return;
  }
  // Column-major BLAS sees a row-major matrix as its transpose, so it is asked for C^T = B^T A^T.
  const char op_a = transpose_a ? 'T' : 'N', op_b = transpose_b ? 'T' : 'N';
  const int rows = static_cast<int>(n), cols = static_cast<int>(m), inner = static_cast<int>(k);
  const int ld_a = static_cast<int>(lda), ld_b = static_cast<int>(ldb), ld_c = static_cast<int>(ldc);
  const float beta = 0.0F;
  system_sgemm()(&op_b, &op_a, &rows, &cols, &inner, &alpha, b, &ld_b, a, &ld_a, &beta, c, &ld_c);
}

}  // namespace vit::models::blas
