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

// 16 bf16 values stored as fp32 or bf16.
VIT_AVX512_BF16 inline void store_bits(float* out, __mmask16 mask, __m256i bits) {
  _mm512_mask_storeu_ps(out, mask, widened(bits));
}
VIT_AVX512_BF16 inline void store_bits(c10::BFloat16* out, __mmask16 mask, __m256i bits) {
  _mm256_mask_storeu_epi16(out, mask, bits);
}

// 16 values rounded to bf16, stored as fp32 or bf16.
template <typename Value>
VIT_AVX512_BF16 inline void store_rounded(Value* out, __mmask16 mask, __m512 x) {
  store_bits(out, mask, bf16_bits(x));
}

// 16 values as they are: fp32 ones, bf16 ones widened.
VIT_AVX512_BF16 inline __m512 loaded_values(const float* x, __mmask16 mask) { return _mm512_maskz_loadu_ps(mask, x); }
VIT_AVX512_BF16 inline __m512 loaded_values(const c10::BFloat16* x, __mmask16 mask) {
  return widened(_mm256_maskz_loadu_epi16(mask, x));
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

// One row of a product written without its bias: h = bf16(product + bias) as the GELU's input, so
// that the layer's output costs no pass of its own for the bias. A bf16 product (oneDNN's) has
// been rounded once already; an fp32 one (the fp32 kernels', unrounded) is rounded here only.
template <typename Value>
VIT_AVX512_BF16 inline __m256i pre_activation_bits(const Value* product, const float* bias, int64_t j, __mmask16 mask) {
  return bf16_bits(_mm512_add_ps(loaded_values(product + j, mask), _mm512_maskz_loadu_ps(mask, bias + j)));
}

// `kept` (an fp32 product's only) receives h for the backward: the fp32 product is not kept.
template <typename Value>
VIT_AVX512_BF16 void forward_rows_with_bias(const Value* product, const float* bias, Value* activated,
                                            c10::BFloat16* kept, int64_t columns, int64_t begin, int64_t end) {
  const auto& table = GeluTables::get().activated;
  for (int64_t row = begin; row < end; ++row) {
    const int64_t offset = row * columns;
    for (int64_t j = 0; j < columns; j += 16) {
      const auto mask = lanes(j, columns);
      const auto bits = pre_activation_bits(product + offset, bias, j, mask);
      if (kept != nullptr) _mm256_mask_storeu_epi16(kept + offset + j, mask, bits);
      store_rounded(activated + offset + j, mask, looked_up(table, bits));  // already bf16 values: exact
    }
  }
}

// Where the backward finds h: the bits the forward kept, or recomputed from a bf16 product.
struct PreActivation {
  const c10::BFloat16* kept;     // or null
  const c10::BFloat16* product;  // where nothing was kept
  const float* bias;

  VIT_AVX512_BF16 __m256i bits(int64_t offset, int64_t j, __mmask16 mask) const {
    if (kept != nullptr) return _mm256_maskz_loadu_epi16(mask, kept + offset + j);
    return pre_activation_bits(product + offset, bias, j, mask);
  }
};

// The rows' gradient with respect to the product, bf16(bf16(grad) · gelu'(h)) in the product's dtype
// (as the product's backward would take it), and its sums over the rows into `bias_grad` (fp32,
// added to what is there).
template <typename Value>
VIT_AVX512_BF16 void backward_rows_with_bias(const Value* grad, const PreActivation& h, Value* grad_product,
                                             float* bias_grad, int64_t columns, int64_t begin, int64_t end) {
  const auto& table = GeluTables::get().derivative;
  for (int64_t row = begin; row < end; ++row) {
    const int64_t offset = row * columns;
    for (int64_t j = 0; j < columns; j += 16) {
      const auto mask = lanes(j, columns);
      const auto derivative = looked_up(table, h.bits(offset, j, mask));
      const auto g = widened(loaded_bits(grad + offset + j, mask));
      const auto bits = bf16_bits(_mm512_mul_ps(g, derivative));
      store_bits(grad_product + offset + j, mask, bits);
      const auto sum = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, bias_grad + j), widened(bits));
      _mm512_mask_storeu_ps(bias_grad + j, mask, sum);
    }
  }
}

#else

struct PreActivation {
  const c10::BFloat16 *kept, *product;
  const float* bias;
};
template <typename Value>
void forward_rows_with_bias(const Value*, const float*, Value*, c10::BFloat16*, int64_t, int64_t, int64_t) {}
template <typename Value>
void backward_rows_with_bias(const Value*, const PreActivation&, Value*, float*, int64_t, int64_t, int64_t) {}

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

// Over an fp32 or a bf16 product (the gradient has its dtype); the bias is fp32.
struct Bf16GeluOfProductPlusBias : public torch::autograd::Function<Bf16GeluOfProductPlusBias> {
  template <typename Value>
  static void forward_rows(const at::Tensor& product, const at::Tensor& bias, at::Tensor& activated, at::Tensor& kept) {
    const int64_t columns = product.size(-1), rows = product.numel() / std::max<int64_t>(columns, 1);
    const auto* p = product.data_ptr<Value>();
    const auto* b = bias.data_ptr<float>();
    auto* out = activated.data_ptr<Value>();
    auto* h = kept.defined() ? kept.data_ptr<c10::BFloat16>() : nullptr;
    at::parallel_for(0, rows, vector16::items_per_task(columns),
                     [&](int64_t begin, int64_t end) { forward_rows_with_bias(p, b, out, h, columns, begin, end); });
  }

  static at::Tensor forward(torch::autograd::AutogradContext* context, const at::Tensor& product,
                            const at::Tensor& bias) {
    const auto input = product.contiguous();
    const auto bias_values = bias.contiguous();
    auto activated = at::empty_like(input);
    const bool of_fp32 = input.scalar_type() == at::kFloat;
    auto kept = of_fp32 ? at::empty(input.sizes(), input.options().dtype(at::kBFloat16)) : at::Tensor();
    of_fp32 ? forward_rows<float>(input, bias_values, activated, kept)
            : forward_rows<c10::BFloat16>(input, bias_values, activated, kept);
    context->save_for_backward({of_fp32 ? kept : input, bias_values});
    context->saved_data["kept"] = of_fp32;
    return activated;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 const torch::autograd::variable_list& output_grads) {
    const auto saved = context->get_saved_variables();
    const auto& bias = saved[1];
    const bool kept = context->saved_data["kept"].toBool();
    const auto* h = saved[0].data_ptr<c10::BFloat16>();
    const PreActivation pre_activation{kept ? h : nullptr, kept ? nullptr : h, bias.data_ptr<float>()};
    const auto grad = output_grads[0].to(kept ? at::kFloat : at::kBFloat16).contiguous();
    const int64_t columns = bias.size(0), rows = grad.numel() / std::max<int64_t>(columns, 1);
    const int64_t blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
    auto grad_product = at::empty_like(grad);
    auto block_sums = at::zeros({std::max<int64_t>(blocks, 1), columns}, bias.options());
    auto* sums = block_sums.data_ptr<float>();
    const int64_t grain = vector16::items_per_task(kRowsPerBlock * columns);
    const auto backward_blocks = [&](auto value) {
      using Value = decltype(value);
      const auto* g = grad.data_ptr<Value>();
      auto* grad_p = grad_product.data_ptr<Value>();
      at::parallel_for(0, blocks, grain, [&](int64_t first, int64_t last) {
        for (int64_t block = first; block < last; ++block) {
          backward_rows_with_bias(g, pre_activation, grad_p, sums + block * columns, columns, block * kRowsPerBlock,
                                  std::min(rows, (block + 1) * kRowsPerBlock));
        }
      });
    };
    kept ? backward_blocks(float{}) : backward_blocks(c10::BFloat16{});
    return {grad_product, block_sums.sum(0)};
  }
};

}  // namespace

bool gelu_of_bf16_values_vectorized() { return vector16::avx512_bf16_available(); }

const float* gelu_of_bf16_table() { return GeluTables::get().activated.data(); }
const float* gelu_derivative_of_bf16_table() { return GeluTables::get().derivative.data(); }

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
  const bool of_bf16 = product.scalar_type() == at::kBFloat16;
  TORCH_CHECK((of_bf16 || product.scalar_type() == at::kFloat) && bias.scalar_type() == at::kFloat && bias.dim() == 1 &&
                  product.dim() >= 1 && product.size(-1) == bias.size(0),
              "gelu_of_bf16_product_plus_bias: an fp32 or bf16 product [..., N] and an fp32 bias [N]");
  if (!vector16::avx512_bf16_available() || !product.device().is_cpu()) {
    return of_bf16 ? at::gelu(product + bias.to(at::kBFloat16)) : gelu_of_bf16_values(product + bias);
  }
  return Bf16GeluOfProductPlusBias::apply(product, bias);
}

}  // namespace vit::models
