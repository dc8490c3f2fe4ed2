#include "models/kernels/bf16_gelu.h"

#include "models/kernels/vector16.h"

#include <ATen/Functions.h>
#include <ATen/Parallel.h>
#include <ATen/TensorOperators.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
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

// The bf16 bits of 16 values: fp32 ones rounded, bf16 ones as they are.
VIT_AVX512_BF16 inline __m256i loaded_bits(const float* x, __mmask16 mask) {
  return bf16_bits(_mm512_maskz_loadu_ps(mask, x));
}
VIT_AVX512_BF16 inline __m256i loaded_bits(const c10::BFloat16* x, __mmask16 mask) {
  return _mm256_maskz_loadu_epi16(mask, x);
}

// 16 values rounded to bf16, stored as fp32 or bf16.
VIT_AVX512_BF16 inline void store_rounded(float* out, __mmask16 mask, __m512 x) {
  _mm512_mask_storeu_ps(out, mask, bf16_rounded(x));
}
VIT_AVX512_BF16 inline void store_rounded(c10::BFloat16* out, __mmask16 mask, __m512 x) {
  _mm256_mask_storeu_epi16(out, mask, bf16_bits(x));
}

// `rounded_hidden` receives bf16(hidden) where hidden is fp32; a bf16 hidden is kept as it is.
template <typename Value>
VIT_AVX512_BF16 void forward_elements(const Value* hidden, c10::BFloat16* rounded_hidden, Value* activated,
                                      int64_t begin, int64_t end) {
  const auto& table = GeluTables::get().activated;
  for (int64_t i = begin; i < end; i += 16) {
    const auto mask = lanes(i, end);
    const auto bits = loaded_bits(hidden + i, mask);
    if constexpr (std::is_same_v<Value, float>) _mm256_mask_storeu_epi16(rounded_hidden + i, mask, bits);
    store_rounded(activated + i, mask, looked_up(table, bits));  // already bf16 values: exact
  }
}

template <typename Value>
VIT_AVX512_BF16 void backward_elements(const Value* grad, const c10::BFloat16* rounded_hidden, Value* grad_hidden,
                                       int64_t begin, int64_t end) {
  const auto& table = GeluTables::get().derivative;
  for (int64_t i = begin; i < end; i += 16) {
    const auto mask = lanes(i, end);
    const auto derivative = looked_up(table, _mm256_maskz_loadu_epi16(mask, rounded_hidden + i));
    const auto g = widened(loaded_bits(grad + i, mask));
    store_rounded(grad_hidden + i, mask, _mm512_mul_ps(g, derivative));
  }
}

// One row of a product that oneDNN wrote without its bias: h = bf16(product + bias) as the GELU's
// input, so that the layer's output costs no pass of its own for the bias.
VIT_AVX512_BF16 inline __m256i pre_activation_bits(const c10::BFloat16* product, const float* bias, int64_t j,
                                                   __mmask16 mask) {
  const auto p = widened(_mm256_maskz_loadu_epi16(mask, product + j));
  return bf16_bits(_mm512_add_ps(p, _mm512_maskz_loadu_ps(mask, bias + j)));
}

VIT_AVX512_BF16 void forward_rows_with_bias(const c10::BFloat16* product, const float* bias, c10::BFloat16* activated,
                                            int64_t columns, int64_t begin, int64_t end) {
  const auto& table = GeluTables::get().activated;
  for (int64_t row = begin; row < end; ++row) {
    const int64_t offset = row * columns;
    for (int64_t j = 0; j < columns; j += 16) {
      const auto mask = lanes(j, columns);
      const auto bits = pre_activation_bits(product + offset, bias, j, mask);
      _mm256_mask_storeu_epi16(activated + offset + j, mask, bf16_bits(looked_up(table, bits)));
    }
  }
}

// The rows' gradient with respect to the product (bf16, as autocast's addmm would take it) and its
// sums over the rows into `bias_grad` (fp32, added to what is there).
VIT_AVX512_BF16 void backward_rows_with_bias(const c10::BFloat16* grad, const c10::BFloat16* product, const float* bias,
                                             c10::BFloat16* grad_product, float* bias_grad, int64_t columns,
                                             int64_t begin, int64_t end) {
  const auto& table = GeluTables::get().derivative;
  for (int64_t row = begin; row < end; ++row) {
    const int64_t offset = row * columns;
    for (int64_t j = 0; j < columns; j += 16) {
      const auto mask = lanes(j, columns);
      const auto derivative = looked_up(table, pre_activation_bits(product + offset, bias, j, mask));
      const auto g = widened(_mm256_maskz_loadu_epi16(mask, grad + offset + j));
      const auto bits = bf16_bits(_mm512_mul_ps(g, derivative));
      _mm256_mask_storeu_epi16(grad_product + offset + j, mask, bits);
      const auto sum = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, bias_grad + j), widened(bits));
      _mm512_mask_storeu_ps(bias_grad + j, mask, sum);
    }
  }
}

#else

void forward_rows_with_bias(const c10::BFloat16*, const float*, c10::BFloat16*, int64_t, int64_t, int64_t) {}
void backward_rows_with_bias(const c10::BFloat16*, const c10::BFloat16*, const float*, c10::BFloat16*, float*, int64_t,
                             int64_t, int64_t) {}

template <typename Value>
void forward_elements(const Value*, c10::BFloat16*, Value*, int64_t, int64_t) {}
template <typename Value>
void backward_elements(const Value*, const c10::BFloat16*, Value*, int64_t, int64_t) {}

#endif

template <typename Value>
void forward_pass(const at::Tensor& hidden, at::Tensor& rounded_hidden, at::Tensor& activated) {
  at::parallel_for(0, hidden.numel(), vector16::kElementsPerTask, [&](int64_t begin, int64_t end) {
    forward_elements(hidden.data_ptr<Value>(), rounded_hidden.data_ptr<c10::BFloat16>(), activated.data_ptr<Value>(),
                     begin, end);
  });
}

template <typename Value>
void backward_pass(const at::Tensor& grad, const at::Tensor& rounded_hidden, at::Tensor& grad_hidden) {
  at::parallel_for(0, grad.numel(), vector16::kElementsPerTask, [&](int64_t begin, int64_t end) {
    backward_elements(grad.data_ptr<Value>(), rounded_hidden.data_ptr<c10::BFloat16>(), grad_hidden.data_ptr<Value>(),
                      begin, end);
  });
}

// Over fp32 or bf16 tensors (the gradient has the dtype of the output); the saved hidden is bf16
// either way.
struct Bf16Gelu : public torch::autograd::Function<Bf16Gelu> {
  static at::Tensor forward(torch::autograd::AutogradContext* context, const at::Tensor& hidden) {
    const auto input = hidden.contiguous();
    const bool rounds = input.scalar_type() == at::kFloat;
    auto rounded_hidden = rounds ? at::empty(input.sizes(), input.options().dtype(at::kBFloat16)) : input;
    auto activated = at::empty_like(input);
    rounds ? forward_pass<float>(input, rounded_hidden, activated)
           : forward_pass<c10::BFloat16>(input, rounded_hidden, activated);
    context->save_for_backward({rounded_hidden});
    return activated;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 const torch::autograd::variable_list& output_grads) {
    const auto rounded_hidden = context->get_saved_variables()[0];
    const auto grad = output_grads[0].contiguous();
    auto grad_hidden = at::empty(grad.sizes(), grad.options());
    grad.scalar_type() == at::kFloat ? backward_pass<float>(grad, rounded_hidden, grad_hidden)
                                     : backward_pass<c10::BFloat16>(grad, rounded_hidden, grad_hidden);
    return {grad_hidden};
  }
};

// Rows per task of the bias's gradient: each block's sums are made apart and added in block order,
// so that the gradient's bits do not depend on the thread count.
constexpr int64_t kRowsPerBlock = 64;

struct Bf16GeluOfProductPlusBias : public torch::autograd::Function<Bf16GeluOfProductPlusBias> {
  static at::Tensor forward(torch::autograd::AutogradContext* context, const at::Tensor& product,
                            const at::Tensor& bias) {
    const auto input = product.contiguous();
    const auto bias_values = bias.contiguous();
    const int64_t columns = input.size(-1), rows = input.numel() / std::max<int64_t>(columns, 1);
    auto activated = at::empty_like(input);
    const auto* p = input.data_ptr<c10::BFloat16>();
    const auto* b = bias_values.data_ptr<float>();
    auto* out = activated.data_ptr<c10::BFloat16>();
    const int64_t grain = std::max<int64_t>(1, vector16::kElementsPerTask / std::max<int64_t>(columns, 1));
    at::parallel_for(0, rows, grain,
                     [&](int64_t begin, int64_t end) { forward_rows_with_bias(p, b, out, columns, begin, end); });
    context->save_for_backward({input, bias_values});
    return activated;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 const torch::autograd::variable_list& output_grads) {
    const auto saved = context->get_saved_variables();
    const auto& product = saved[0];
    const auto& bias = saved[1];
    const auto grad = output_grads[0].to(at::kBFloat16).contiguous();
    const int64_t columns = product.size(-1), rows = product.numel() / std::max<int64_t>(columns, 1);
    const int64_t blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
    auto grad_product = at::empty_like(product);
    auto block_sums = at::zeros({std::max<int64_t>(blocks, 1), columns}, bias.options());
    const auto* g = grad.data_ptr<c10::BFloat16>();
    const auto* p = product.data_ptr<c10::BFloat16>();
    const auto* b = bias.data_ptr<float>();
    auto* grad_p = grad_product.data_ptr<c10::BFloat16>();
    auto* sums = block_sums.data_ptr<float>();
    const int64_t grain =
        std::max<int64_t>(1, vector16::kElementsPerTask / (kRowsPerBlock * std::max<int64_t>(columns, 1)));
    at::parallel_for(0, blocks, grain, [&](int64_t first, int64_t last) {
      for (int64_t block = first; block < last; ++block) {
        backward_rows_with_bias(g, p, b, grad_p, sums + block * columns, columns, block * kRowsPerBlock,
                                std::min(rows, (block + 1) * kRowsPerBlock));
      }
    });
    return {grad_product, block_sums.sum(0)};
  }
};

}  // namespace

bool gelu_of_bf16_values_vectorized() { return vector16::avx512_bf16_available(); }

at::Tensor gelu_of_bf16_values(const at::Tensor& hidden) {
  const bool of_bf16 = hidden.scalar_type() == at::kBFloat16;
  if (!vector16::avx512_bf16_available() || !hidden.device().is_cpu() ||
      (hidden.scalar_type() != at::kFloat && !of_bf16)) {
    return of_bf16 ? at::gelu(hidden) : at::gelu(hidden.to(at::kBFloat16)).to(at::kFloat);
  }
  return Bf16Gelu::apply(hidden);
}

bool bias_in_gelu_pays(int64_t product_elements) {
  constexpr int64_t kMinElements = int64_t{1} << 20;
  return product_elements >= kMinElements;
}

at::Tensor gelu_of_bf16_product_plus_bias(const at::Tensor& product, const at::Tensor& bias) {
  TORCH_CHECK(product.scalar_type() == at::kBFloat16 && bias.scalar_type() == at::kFloat && bias.dim() == 1 &&
                  product.dim() >= 1 && product.size(-1) == bias.size(0),
              "gelu_of_bf16_product_plus_bias: a bf16 product [..., N] and an fp32 bias [N]");
  if (!vector16::avx512_bf16_available() || !product.device().is_cpu()) {
    return at::gelu(product + bias.to(at::kBFloat16));
  }
  return Bf16GeluOfProductPlusBias::apply(product, bias);
}

}  // namespace vit::models
