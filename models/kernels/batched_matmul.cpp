#include "models/kernels/batched_matmul.h"

#include "models/kernels/autocast_state.h"
#include "models/kernels/bf16_products.h"
#include "models/kernels/blas.h"

#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <climits>
#include <optional>
#include <vector>

namespace vit::models {
namespace {

// How blas::gemm reads a [rows, cols] matrix in place: row-major (unit column stride) or as the
// transpose of a row-major matrix (unit row stride), with its leading dimension.
struct BlasOperand {
  bool transposed;
  int64_t ld;
};

std::optional<BlasOperand> as_blas_operand(const at::Tensor& matrices) {
  const int64_t rows = matrices.size(-2), cols = matrices.size(-1);
  const int64_t row_stride = matrices.stride(-2), col_stride = matrices.stride(-1);
  const auto fits = [](int64_t ld, int64_t minimum) { return ld >= std::max<int64_t>(1, minimum) && ld <= INT_MAX; };
  // The stride of a dimension of size 1 says nothing about the layout.
  if (col_stride == 1 || cols == 1) {
    const int64_t ld = rows == 1 ? cols : row_stride;
    if (fits(ld, cols)) return BlasOperand{false, ld};
  }
  if (row_stride == 1 || rows == 1) {
    const int64_t ld = cols == 1 ? rows : col_stride;
    if (fits(ld, rows)) return BlasOperand{true, ld};
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

at::Tensor blas_matmul(at::Tensor a, at::Tensor b) {
  auto a_operand = as_blas_operand(a);
  if (!a_operand) a_operand = as_blas_operand(a = a.contiguous());
  auto b_operand = as_blas_operand(b);
  if (!b_operand) b_operand = as_blas_operand(b = b.contiguous());

  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  auto sizes = a.sizes().vec();
  sizes.back() = n;
  auto c = at::empty(sizes, a.options());
  const auto a_offsets = matrix_offsets(a), b_offsets = matrix_offsets(b);
  const float* const a_data = a.data_ptr<float>();
  const float* const b_data = b.data_ptr<float>();
  float* const c_data = c.data_ptr<float>();
  blas::for_each_product(static_cast<int64_t>(a_offsets.size()), m * n * k, [&](int64_t i) {
    blas::gemm(m, n, k, 1.0F, a_data + a_offsets[i], a_operand->ld, a_operand->transposed, b_data + b_offsets[i],
               b_operand->ld, b_operand->transposed, c_data + i * m * n, n);
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

// Whether blas::gemm can read both operands' matrices, whatever their dtype.
bool blas_shapes_fit(const at::Tensor& a, const at::Tensor& b) {
  for (const auto* matrices : {&a, &b}) {
    if (!matrices->device().is_cpu() || matrices->layout() != at::kStrided || matrices->dim() < 3 ||
        matrices->numel() == 0) {
      return false;
    }
  }
  const auto batch_dims = a.dim() - 2;
  return b.dim() == a.dim() && a.sizes().slice(0, batch_dims) == b.sizes().slice(0, batch_dims) &&
         a.size(-1) == b.size(-2) && std::max({a.size(-2), a.size(-1), b.size(-1)}) <= INT_MAX;
}

bool fp32_product(const at::Tensor& a, const at::Tensor& b) {
  return a.scalar_type() == at::kFloat && b.scalar_type() == at::kFloat && blas::kernels_apply();
}

// bf16 under autocast, or bf16 operands outside it.
bool bf16_product(const at::Tensor& a, const at::Tensor& b) {
  const auto dtype = linear_input_dtype(a);
  return dtype == at::kBFloat16 && (autocast_enabled(c10::kCPU) || b.scalar_type() == dtype) &&
         bf16_products_on_blas(a);
}

}  // namespace

at::Tensor batched_matmul(const at::Tensor& a, const at::Tensor& b) {
  if (!blas_shapes_fit(a, b)) return at::matmul(a, b);
  if (fp32_product(a, b)) return BatchedMatmul::apply(a, b);
  if (bf16_product(a, b)) return BatchedMatmul::apply(bf16_values(a), bf16_values(b)).to(at::kBFloat16);
  return at::matmul(a, b);
}

}  // namespace vit::models
