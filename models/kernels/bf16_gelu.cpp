#include "models/kernels/bf16_gelu.h"

#include "models/kernels/vector16.h"

#include <ATen/Functions.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace vit::models {
namespace {

// GELU and its derivative at every bf16 value, computed once in float64: the input of both passes
// is a bf16, so a table lookup replaces erf, and the values are exact (GELU's rounded to bf16,
// the derivative rounded to fp32). 2 × 256 KiB, most of it NaN and extremes; the values that
// activations take lie in a few thousand entries.
struct GeluTables {
  std::vector<float> activated;   // bf16(gelu(x)), held in fp32
  std::vector<float> derivative;  // gelu'(x)

  GeluTables() : activated(1 << 16), derivative(1 << 16) {
    for (uint32_t bits = 0; bits < (1U << 16); ++bits) {
      const double x = static_cast<float>(c10::BFloat16(static_cast<uint16_t>(bits), c10::BFloat16::from_bits()));
      const double cdf = 0.5 * std::erfc(-x * M_SQRT1_2);
      activated[bits] = static_cast<float>(c10::BFloat16(static_cast<float>(x * cdf)));
      derivative[bits] = static_cast<float>(cdf + x * std::exp(-0.5 * x * x) * 0.5 * M_2_SQRTPI * M_SQRT1_2);
    }
  }

  static const GeluTables& get() {
    static const GeluTables tables;
    return tables;
  }
};

#if defined(__x86_64__)

// 16 elements at a time: AVX512-BF16 rounds fp32 to bf16 in one instruction, AVX-512 gathers
// from the tables.
using vector16::bf16_bits;
using vector16::bf16_rounded;
using vector16::lanes;
using vector16::widened;

VIT_AVX512_BF16 inline __m512 looked_up(const std::vector<float>& table, __m256i bits) {
  return _mm512_i32gather_ps(_mm512_cvtepu16_epi32(bits), table.data(), 4);
}

VIT_AVX512_BF16 void forward_elements(const float* hidden, c10::BFloat16* rounded_hidden, float* activated,
                                      int64_t begin, int64_t end) {
  const auto& table = GeluTables::get().activated;
  for (int64_t i = begin; i < end; i += 16) {
    const auto mask = lanes(i, end);
    const auto bits = bf16_bits(_mm512_maskz_loadu_ps(mask, hidden + i));
    _mm256_mask_storeu_epi16(rounded_hidden + i, mask, bits);
    _mm512_mask_storeu_ps(activated + i, mask, looked_up(table, bits));
  }
}

VIT_AVX512_BF16 void backward_elements(const float* grad, const c10::BFloat16* rounded_hidden, float* grad_hidden,
                                       int64_t begin, int64_t end) {
  const auto& table = GeluTables::get().derivative;
  for (int64_t i = begin; i < end; i += 16) {
    const auto mask = lanes(i, end);
    const auto derivative = looked_up(table, _mm256_maskz_loadu_epi16(mask, rounded_hidden + i));
    const auto g = bf16_rounded(_mm512_maskz_loadu_ps(mask, grad + i));
    _mm512_mask_storeu_ps(grad_hidden + i, mask, bf16_rounded(_mm512_mul_ps(g, derivative)));
  }
}

#else

void forward_elements(const float*, c10::BFloat16*, float*, int64_t, int64_t) {}
void backward_elements(const float*, const c10::BFloat16*, float*, int64_t, int64_t) {}

#endif

struct Bf16Gelu : public torch::autograd::Function<Bf16Gelu> {
  static at::Tensor forward(torch::autograd::AutogradContext* context, const at::Tensor& hidden) {
    const auto input = hidden.contiguous();
    auto rounded_hidden = at::empty(input.sizes(), input.options().dtype(at::kBFloat16));
    auto activated = at::empty_like(input);
    at::parallel_for(0, input.numel(), vector16::kElementsPerTask, [&](int64_t begin, int64_t end) {
      forward_elements(input.data_ptr<float>(), rounded_hidden.data_ptr<c10::BFloat16>(), activated.data_ptr<float>(),
                       begin, end);
    });
    context->save_for_backward({rounded_hidden});
    return activated;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 const torch::autograd::variable_list& output_grads) {
    const auto rounded_hidden = context->get_saved_variables()[0];
    const auto grad = output_grads[0].contiguous();
    auto grad_hidden = at::empty(grad.sizes(), grad.options());
    at::parallel_for(0, grad.numel(), vector16::kElementsPerTask, [&](int64_t begin, int64_t end) {
      backward_elements(grad.data_ptr<float>(), rounded_hidden.data_ptr<c10::BFloat16>(), grad_hidden.data_ptr<float>(),
                        begin, end);
    });
    return {grad_hidden};
  }
};

}  // namespace

bool gelu_of_bf16_values_vectorized() { return vector16::avx512_bf16_available(); }

at::Tensor gelu_of_bf16_values(const at::Tensor& hidden) {
  if (!vector16::avx512_bf16_available() || !hidden.device().is_cpu() || hidden.scalar_type() != at::kFloat) {
    return at::gelu(hidden.to(at::kBFloat16)).to(at::kFloat);
  }
  return Bf16Gelu::apply(hidden);
}

}  // namespace vit::models
