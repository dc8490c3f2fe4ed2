#include "models/batched_matmul.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/version.h>

#include <dlfcn.h>

#include <algorithm>
#include <climits>
#include <optional>
#include <vector>

namespace vit::models {
namespace {

using Sgemm = void(const char* transa, const char* transb, const int* m, const int* n, const int* k, const float* alpha,
                   const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
                   const int* ldc);

// LibTorch calls the system BLAS through its Fortran symbol. Looking the symbol up at run time
// reaches that same library without linking it; builds that keep their BLAS private (the
// PyTorch wheels, which bundle MKL) export none and take torch::matmul.
Sgemm* system_sgemm() {
  static Sgemm* const sgemm = reinterpret_cast<Sgemm*>(dlsym(RTLD_DEFAULT, "sgemm_"));
  return sgemm;
}

// Under CPU autocast torch::matmul runs in the autocast dtype; this kernel would not.
bool cpu_autocast_enabled() {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  return at::autocast::is_autocast_enabled(at::kCPU);
#else
  return at::autocast::is_cpu_enabled();
#endif
}

// A matrix as column-major BLAS reads its transpose: a row-major [rows, cols] matrix laid out with
// unit column stride is, in column-major order, its own transpose ('N'); one with unit row stride
// is the matrix itself, to be transposed ('T'). The product is then taken as C^T = B^T A^T, which
// leaves C row-major.
struct BlasOperand {
  char op;
  int ld;
};

std::optional<BlasOperand> as_blas_transpose(const at::Tensor& matrices) {
  const int64_t rows = matrices.size(-2), cols = matrices.size(-1);
  const int64_t row_stride = matrices.stride(-2), col_stride = matrices.stride(-1);
  const auto fits = [](int64_t ld, int64_t minimum) { return ld >= std::max<int64_t>(1, minimum) && ld <= INT_MAX; };
  // The stride of a dimension of size 1 says nothing about the layout.
  if (col_stride == 1 || cols == 1) {
    const int64_t ld = rows == 1 ? cols : row_stride;
    if (fits(ld, cols)) return BlasOperand{'N', static_cast<int>(ld)};
  }
  if (row_stride == 1 || rows == 1) {
    const int64_t ld = cols == 1 ? rows : col_stride;
    if (fits(ld, rows)) return BlasOperand{'T', static_cast<int>(ld)};
  }
  return std::nullopt;
}

// The element offset of every matrix of the batch, in row-major order of the batch dimensions.
std::vector<int64_t> matrix_offsets(const at::Tensor& matrices) {
  std::vector<int64_t> offsets{0};
  for (int64_t dim = 0; dim < matrices.dim() - 2; ++dim) {
    std::vector<int64_t> next;
    next.reserve(offsets.size() * matrices.size(dim));
    for (const int64_t base : offsets) {
      for (int64_t i = 0; i < matrices.size(dim); ++i) next.push_back(base + i * matrices.stride(dim));
    }
    offsets = std::move(next);
  }
  return offsets;
}

// A task smaller than this costs more to hand to a thread than to compute.
constexpr int64_t kMinMultiplyAddsPerTask = 1 << 16;

at::Tensor blas_matmul(at::Tensor a, at::Tensor b) {
  auto a_operand = as_blas_transpose(a);
  if (!a_operand) a_operand = as_blas_transpose(a = a.contiguous());
  auto b_operand = as_blas_transpose(b);
  if (!b_operand) b_operand = as_blas_transpose(b = b.contiguous());

  const int m = static_cast<int>(a.size(-2)), k = static_cast<int>(a.size(-1)), n = static_cast<int>(b.size(-1));
  auto sizes = a.sizes().vec();
  sizes.back() = n;
  auto c = at::empty(sizes, a.options());
  const auto a_offsets = matrix_offsets(a), b_offsets = matrix_offsets(b);
  const float* const a_data = a.data_ptr<float>();
  const float* const b_data = b.data_ptr<float>();
  float* const c_data = c.data_ptr<float>();
  const int64_t grain = std::max<int64_t>(1, kMinMultiplyAddsPerTask / (int64_t{m} * n * k));
  // Inside the parallel region the BLAS runs each call on the calling thread.
  at::parallel_for(0, static_cast<int64_t>(a_offsets.size()), grain, [&](int64_t begin, int64_t end) {
    const float one = 1.0F, zero = 0.0F;
    for (int64_t i = begin; i < end; ++i) {
      system_sgemm()(&b_operand->op, &a_operand->op, &n, &m, &k, &one, b_data + b_offsets[i], &b_operand->ld,
                     a_data + a_offsets[i], &a_operand->ld, &zero, c_data + i * m * n, &n);
    }
  });
  return c;
}

struct BatchedMatmul : public torch::autograd::Function<BatchedMatmul> {
  static at::Tensor forward(torch::autograd::AutogradContext* context, const at::Tensor& a, const at::Tensor& b) {
    context->save_for_backward({a, b});
    return blas_matmul(a, b);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 const torch::autograd::variable_list& output_grads) {
    const auto saved = context->get_saved_variables();
    const auto& grad = output_grads[0];
    return {context->needs_input_grad(0) ? blas_matmul(grad, saved[1].transpose(-2, -1)) : at::Tensor(),
            context->needs_input_grad(1) ? blas_matmul(saved[0].transpose(-2, -1), grad) : at::Tensor()};
  }
};

bool blas_kernel_applies(const at::Tensor& a, const at::Tensor& b) {
  if (system_sgemm() == nullptr || cpu_autocast_enabled() || torch::jit::tracer::isTracing()) return false;
  for (const auto* matrices : {&a, &b}) {
    if (!matrices->device().is_cpu() || matrices->layout() != at::kStrided ||
        matrices->scalar_type() != at::kFloat || matrices->dim() < 3 || matrices->numel() == 0) {
      return false;
    }
  }
  const auto batch_dims = a.dim() - 2;
  return b.dim() == a.dim() && a.sizes().slice(0, batch_dims) == b.sizes().slice(0, batch_dims) &&
         a.size(-1) == b.size(-2) && std::max({a.size(-2), a.size(-1), b.size(-1)}) <= INT_MAX;
}

}  // namespace

at::Tensor batched_matmul(const at::Tensor& a, const at::Tensor& b) {
  return blas_kernel_applies(a, b) ? BatchedMatmul::apply(a, b) : at::matmul(a, b);
}

}  // namespace vit::models
