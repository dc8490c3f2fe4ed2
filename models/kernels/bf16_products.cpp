#include "models/kernels/bf16_products.h"

#include "models/kernels/blas.h"
#include "models/kernels/vector16.h"

#include <ATen/Functions.h>
#include <ATen/Parallel.h>
#include <ATen/TensorOperators.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/jit/frontend/tracer.h>

#include <atomic>

namespace vit::models {
namespace {

std::atomic<Bf16Products> chosen_products{Bf16Products::kOneDnn};

#if defined(__x86_64__)

using vector16::round_to_bf16_values;

// Rows begin … end of x [rows, columns] plus the row `bias`, rounded.
VIT_AVX512_BF16 void round_rows_plus(const float* x, const float* bias, float* rounded, int64_t columns, int64_t begin,
                                     int64_t end) {
  for (int64_t row = begin; row < end; ++row) {
    const int64_t offset = row * columns;
    for (int64_t j = 0; j < columns; j += 16) {
      const auto mask = vector16::lanes(j, columns);
      const auto sum =
          _mm512_add_ps(_mm512_maskz_loadu_ps(mask, x + offset + j), _mm512_maskz_loadu_ps(mask, bias + j));
      _mm512_mask_storeu_ps(rounded + offset + j, mask, vector16::bf16_rounded(sum));
    }
  }
}

#else

void round_to_bf16_values(const float*, float*, int64_t, int64_t) {}
void round_rows_plus(const float*, const float*, float*, int64_t, int64_t, int64_t) {}

#endif

at::Tensor rounded_to_bf16_values(const at::Tensor& x) {
  const auto input = x.contiguous();
  auto rounded = at::empty_like(input);
  at::parallel_for(0, input.numel(), vector16::kElementsPerTask, [&](int64_t begin, int64_t end) {
    round_to_bf16_values(input.data_ptr<float>(), rounded.data_ptr<float>(), begin, end);
  });
  return rounded;
}

// fp32 -> bf16 values in fp32, one pass each way, where LibTorch's casts to bf16 and back take two:
// the gradient is rounded the same way, as the two casts' backward would round it.
struct Bf16Values : public torch::autograd::Function<Bf16Values> {
  static at::Tensor forward(torch::autograd::AutogradContext*, const at::Tensor& x) {
    return rounded_to_bf16_values(x);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext*,
                                                 const torch::autograd::variable_list& output_grads) {
    return {rounded_to_bf16_values(output_grads[0])};
  }
};

}  // namespace

void set_bf16_products(Bf16Products products) { chosen_products = products; }

Bf16Products bf16_products() { return chosen_products; }

bool bf16_products_on_blas(const at::Tensor& operand) {
  return chosen_products == Bf16Products::kFp32Blas && operand.device().is_cpu() && blas::system_blas_available() &&
         !torch::jit::tracer::isTracing();
}

at::Tensor bf16_values_of_sum(const at::Tensor& x, const at::Tensor& bias) {
  TORCH_CHECK(x.scalar_type() == at::kFloat && bias.scalar_type() == at::kFloat && x.dim() >= 1 && bias.dim() == 1 &&
                  x.size(-1) == bias.size(0),
              "bf16_values_of_sum: an fp32 x [..., C] and an fp32 bias [C]");
  if (!x.device().is_cpu() || !vector16::avx512_bf16_available()) return (x + bias).to(at::kBFloat16).to(at::kFloat);
  const auto input = x.contiguous(), row_bias = bias.contiguous();
  auto rounded = at::empty_like(input);
  const int64_t columns = input.size(-1), rows = columns == 0 ? 0 : input.numel() / columns;
  at::parallel_for(0, rows, vector16::items_per_task(columns), [&](int64_t begin, int64_t end) {
    round_rows_plus(input.data_ptr<float>(), row_bias.data_ptr<float>(), rounded.data_ptr<float>(), columns, begin,
                    end);
  });
  return rounded;
}

at::Tensor bf16_values(const at::Tensor& x) {
  if (!x.defined()) return x;
  if (x.scalar_type() == at::kBFloat16) return x.to(at::kFloat);
  if (x.scalar_type() == at::kFloat && x.device().is_cpu() && vector16::avx512_bf16_available()) {
    return Bf16Values::apply(x);
  }
  return x.to(at::kBFloat16).to(at::kFloat);
}

}  // namespace vit::models
