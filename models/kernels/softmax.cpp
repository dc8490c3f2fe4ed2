#include "models/kernels/softmax.h"

#include "models/kernels/vector16.h"
#include "models/kernels/vector8.h"

#include <ATen/TensorOperators.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/jit/frontend/tracer.h>

#include <algorithm>
#include <iterator>
#include <limits>
#include <type_traits>
#include <vector>

namespace vit::models {
namespace {

#if defined(__x86_64__)

using vector8::horizontal_max;
using vector8::horizontal_sum;
using vector8::load;
using vector8::store;

bool vector_kernels_available() { return vector8::avx2_fma_available(); }

// A row of n >= 8 goes in chunks of 8 starting at 0, 8, ...; a last partial chunk is the row's
// last 8 values, overlapping the one before: its first lanes are recomputed and stored again with
// the same values, and left out of sums. (Copying a bf16 tail through a buffer would stall on
// store forwarding on every row.) The last chunk's lanes that are new, when it overlaps: the last n % 8.
VIT_AVX2_FMA inline __m256 new_lanes(int64_t n) {
  const auto first_new = _mm256_set1_epi32(static_cast<int>(8 - n % 8));
  const auto lanes = _mm256_cmpgt_epi32(_mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8), first_new);
  return _mm256_castsi256_ps(lanes);
}

// Where chunk c of a row of n >= 8 starts, and whether it overlaps the one before.
inline int64_t chunk_start(int64_t c, int64_t n) { return std::min(8 * c, n - 8); }
inline bool overlaps(int64_t c, int64_t n) { return 8 * c > n - 8; }
inline int64_t chunks_of(int64_t n) { return (n + 7) / 8; }

// e^x for softmax's shifted scores (x <= 0, up to rounding); models/kernels/exp_constants.h.
VIT_AVX2_FMA inline __m256 exp_of(__m256 x) {
  using namespace exp_constants;
  const auto lowest = _mm256_set1_ps(kLowest);
  const auto underflows = _mm256_cmp_ps(x, lowest, _CMP_LT_OQ);
  x = _mm256_max_ps(lowest, x);  // max_ps returns its second operand, x, when x is NaN
  const auto n =
      _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  auto r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2High), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Low), r);
  auto p = _mm256_set1_ps(kPolynomial[0]);
  for (int i = 1; i < 6; ++i) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kPolynomial[i]));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0F)));
  const auto power = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(underflows, _mm256_mul_ps(p, _mm256_castsi256_ps(power)));
}

// The chunk of the row's logits at `start`, less `shift`: scale · x − shift, or with a bias row
// scale · x + bias − shift. (Without a bias the scale goes into the exponent's one fused product.)
template <typename T>
VIT_AVX2_FMA inline __m256 shifted_logits(const T* x, const float* bias, int64_t start, __m256 scales, __m256 shift) {
  if (bias == nullptr) return _mm256_fmsub_ps(scales, load(x + start), shift);
  return _mm256_sub_ps(_mm256_fmadd_ps(scales, load(x + start), load(bias + start)), shift);
}

// The largest logit of a row of n >= 8. The max needs no masking: an overlapping chunk's first
// lanes are the row's own values.
template <typename T>
VIT_AVX2_FMA float largest_logit(const T* x, const float* bias, int64_t n, float scale) {
  const auto scales = _mm256_set1_ps(scale), zero = _mm256_setzero_ps();
  if (bias == nullptr) {
    auto top = load(x);
    for (int64_t c = 1; c < chunks_of(n); ++c) top = _mm256_max_ps(top, load(x + chunk_start(c, n)));
    return scale * horizontal_max(top);
  }
  auto top = shifted_logits(x, bias, 0, scales, zero);
  for (int64_t c = 1; c < chunks_of(n); ++c)
    top = _mm256_max_ps(top, shifted_logits(x, bias, chunk_start(c, n), scales, zero));
  return horizontal_max(top);
}

// y = softmax(scale · x + bias) of one row of n >= 8, bias a row of n floats or null; `exps` holds n
// floats (it may be y itself for fp32).
template <typename T>
VIT_AVX2_FMA void softmax_row(const T* x, const float* bias, T* y, float* exps, int64_t n, float scale) {
  const auto scales = _mm256_set1_ps(scale);
  const auto shift = _mm256_set1_ps(largest_logit(x, bias, n, scale));
  auto sum = _mm256_setzero_ps();
  const auto last_new = new_lanes(n);
  for (int64_t c = 0; c < chunks_of(n); ++c) {
    const int64_t start = chunk_start(c, n);
    const auto e = exp_of(shifted_logits(x, bias, start, scales, shift));
    store(exps + start, e);
    sum = _mm256_add_ps(sum, overlaps(c, n) ? _mm256_and_ps(e, last_new) : e);
  }
  const auto inverse = _mm256_set1_ps(1.0F / horizontal_sum(sum));
  // Written in place (fp32), an overlapping chunk's first lanes already hold their weights.
  const bool in_place = static_cast<const void*>(exps) == static_cast<const void*>(y);
  for (int64_t c = 0; c < chunks_of(n); ++c) {
    const int64_t start = chunk_start(c, n);
    const auto e = load(exps + start);
    const auto weights = _mm256_mul_ps(e, inverse);
    store(y + start, in_place && overlaps(c, n) ? _mm256_blendv_ps(e, weights, last_new) : weights);
  }
}

// dx = scale · y ⊙ (dy − Σ dy ⊙ y) of one row of n >= 8.
template <typename T>
VIT_AVX2_FMA void softmax_backward_row(const T* dy, const T* y, T* dx, int64_t n, float scale) {
  auto dot = _mm256_setzero_ps();
  const auto last_new = new_lanes(n);
  for (int64_t c = 0; c < chunks_of(n); ++c) {
    const int64_t start = chunk_start(c, n);
    const auto product = _mm256_mul_ps(load(dy + start), load(y + start));
    dot = _mm256_add_ps(dot, overlaps(c, n) ? _mm256_and_ps(product, last_new) : product);
  }
  const auto dots = _mm256_set1_ps(horizontal_sum(dot));
  const auto scales = _mm256_set1_ps(scale);
  for (int64_t c = 0; c < chunks_of(n); ++c) {
    const int64_t start = chunk_start(c, n);
    const auto scaled_y = _mm256_mul_ps(scales, load(y + start));
    store(dx + start, _mm256_mul_ps(scaled_y, _mm256_sub_ps(load(dy + start), dots)));
  }
}

// Rows shorter than a chunk run through rows of 8 padded with values that leave them unchanged:
// -inf scores (weight 0), zero weights and gradients.
template <typename T>
struct PaddedRow {
  explicit PaddedRow(const T* values, int64_t n, float fill) {
    std::fill(std::begin(padded), std::end(padded), T(fill));
    std::copy(values, values + n, padded);
  }
  T padded[8];
};

// Row r of x takes bias row r mod (bias rows), or no bias when `bias` is undefined.
template <typename T>
void softmax_rows(const at::Tensor& x, const at::Tensor& bias, const at::Tensor& y, float scale) {
  const int64_t n = x.size(-1), rows = x.numel() / n;
  const T* const in = x.data_ptr<T>();
  T* const out = y.data_ptr<T>();
  const float* const bias_values = bias.defined() ? bias.data_ptr<float>() : nullptr;
  const int64_t bias_rows = bias.defined() ? bias.numel() / n : 1;
  std::vector<float> exps(std::is_same_v<T, float> ? 0 : static_cast<size_t>(n));
  for (int64_t row = 0; row < rows; ++row) {
    const T* const in_row = in + row * n;
    T* const out_row = out + row * n;
    const float* const bias_row = bias_values == nullptr ? nullptr : bias_values + (row % bias_rows) * n;
    if (n < 8) {
      const PaddedRow<T> scores(in_row, n, -std::numeric_limits<float>::infinity());
      T weights[8];
      float padded_exps[8];
      if (bias_row == nullptr) {
        softmax_row(scores.padded, nullptr, weights, padded_exps, 8, scale);
      } else {
        const PaddedRow<float> padded_bias(bias_row, n, 0.0F);
        softmax_row(scores.padded, padded_bias.padded, weights, padded_exps, 8, scale);
      }
      std::copy(weights, weights + n, out_row);
    } else {
      float* const exps_row = std::is_same_v<T, float> ? reinterpret_cast<float*>(out_row) : exps.data();
      softmax_row(in_row, bias_row, out_row, exps_row, n, scale);
    }
  }
}

template <typename T>
void softmax_backward_rows(const at::Tensor& dy, const at::Tensor& y, const at::Tensor& dx, float scale) {
  const int64_t n = y.size(-1), rows = y.numel() / n;
  const T* const g = dy.data_ptr<T>();
  const T* const p = y.data_ptr<T>();
  T* const out = dx.data_ptr<T>();
  for (int64_t row = 0; row < rows; ++row) {
    if (n < 8) {
      const PaddedRow<T> grad(g + row * n, n, 0.0F), weights(p + row * n, n, 0.0F);
      T grad_scores[8];
      softmax_backward_row(grad.padded, weights.padded, grad_scores, 8, scale);
      std::copy(grad_scores, grad_scores + n, out + row * n);
    } else {
      softmax_backward_row(g + row * n, p + row * n, out + row * n, n, scale);
    }
  }
}

// The rows of softmax.h's row API: 16 floats a vector, masked at the row's end, sums in two
// accumulators.
namespace rows16 {

using vector16::bf16_bits;
using vector16::exp_of;
using vector16::first_lanes;
using vector16::lanes;
using vector16::widened;

// The logits scale · x (+ bias) of elements i .. i + 16 that are the row's.
VIT_AVX512_BF16 inline __m512 logits(const float* x, const float* bias, int64_t i, __mmask16 m, __m512 scales) {
  const auto scaled = _mm512_mul_ps(scales, _mm512_maskz_loadu_ps(m, x + i));
  return bias == nullptr ? scaled : _mm512_add_ps(scaled, _mm512_maskz_loadu_ps(m, bias + i));
}

VIT_AVX512_BF16 void softmax(const float* x, const float* bias, float* y, c10::BFloat16* rounded, int64_t n,
                             int64_t padded, float scale) {
  const auto scales = _mm512_set1_ps(scale);
  const auto lowest = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 top[2] = {lowest, lowest};
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes(i, n);
    top[(i / 16) % 2] = _mm512_mask_max_ps(top[(i / 16) % 2], m, top[(i / 16) % 2], logits(x, bias, i, m, scales));
  }
  const auto shift = _mm512_set1_ps(_mm512_reduce_max_ps(_mm512_max_ps(top[0], top[1])));
  __m512 sum[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes(i, n);
    const auto e = _mm512_maskz_mov_ps(m, exp_of(_mm512_sub_ps(logits(x, bias, i, m, scales), shift)));
    _mm512_mask_storeu_ps(y + i, m, e);
    sum[(i / 16) % 2] = _mm512_add_ps(sum[(i / 16) % 2], e);
  }
  const auto inverse = _mm512_set1_ps(1.0F / _mm512_reduce_add_ps(_mm512_add_ps(sum[0], sum[1])));
  for (int64_t i = 0; i < padded; i += 16) {
    const __mmask16 m = first_lanes(n - i);
    const auto normalized = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, y + i), inverse);
    _mm512_mask_storeu_ps(y + i, m, normalized);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(rounded + i), bf16_bits(normalized));
  }
}

// bf16 weights i .. i + 16 that are the row's, in fp32.
VIT_AVX512_BF16 inline __m512 weights(const c10::BFloat16* y, int64_t i, __mmask16 m) {
  return widened(_mm256_maskz_loadu_epi16(m, reinterpret_cast<const uint16_t*>(y) + i));
}

VIT_AVX512_BF16 void softmax_backward(const float* dy, const c10::BFloat16* y, float* dx, c10::BFloat16* rounded,
                                      int64_t n, int64_t padded, float scale) {
  __m512 dot[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = lanes(i, n);
    dot[(i / 16) % 2] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, dy + i), weights(y, i, m), dot[(i / 16) % 2]);
  }
  const auto dots = _mm512_set1_ps(_mm512_reduce_add_ps(_mm512_add_ps(dot[0], dot[1])));
  const auto scales = _mm512_set1_ps(scale);
  for (int64_t i = 0; i < padded; i += 16) {
    const __mmask16 m = first_lanes(n - i);
    const auto scaled_y = _mm512_mul_ps(scales, weights(y, i, m));
    const auto grad = _mm512_mul_ps(scaled_y, _mm512_sub_ps(_mm512_maskz_loadu_ps(m, dy + i), dots));
    _mm512_mask_storeu_ps(dx + i, m, grad);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(rounded + i), bf16_bits(grad));
  }
}

}  // namespace rows16

#else

bool vector_kernels_available() { return false; }

template <typename T>
void softmax_rows(const at::Tensor&, const at::Tensor&, const at::Tensor&, float) {}

template <typename T>
void softmax_backward_rows(const at::Tensor&, const at::Tensor&, const at::Tensor&, float) {}

#endif

bool row_kernels_apply(const at::Tensor& x) {
  return vector_kernels_available() && x.device().is_cpu() && x.layout() == at::kStrided &&
         (x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16) && x.dim() > 0 && x.numel() > 0;
}

struct ScaledSoftmax : public torch::autograd::Function<ScaledSoftmax> {
  static at::Tensor forward(torch::autograd::AutogradContext* context, const at::Tensor& x, double scale) {
    auto y = scaled_softmax_forward(x, scale);
    context->save_for_backward({y});
    context->saved_data["scale"] = scale;
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 const torch::autograd::variable_list& output_grads) {
    const auto y = context->get_saved_variables()[0];
    return {scaled_softmax_backward(output_grads[0], y, context->saved_data["scale"].toDouble()), at::Tensor()};
  }
};

}  // namespace

at::Tensor scaled_softmax_forward(const at::Tensor& x, double scale, const at::Tensor& bias) {
  if (bias.defined()) {
    TORCH_CHECK(bias.scalar_type() == at::kFloat && bias.is_contiguous() && bias.dim() > 0 &&
                    bias.size(-1) == x.size(-1) && x.numel() % bias.numel() == 0,
                "scaled_softmax_forward: the bias must be contiguous fp32 rows as long as x's that x's rows repeat");
  }
  if (!row_kernels_apply(x)) {
    if (!bias.defined()) return at::_softmax(scale == 1.0 ? x : x * scale, -1, false);
    const auto logits = (x * scale).reshape({-1, bias.numel()}) + bias.view({1, -1});
    return at::_softmax(logits.view(x.sizes()), -1, false).to(x.scalar_type());
  }
  const auto input = x.contiguous();
  auto y = at::empty_like(input, at::MemoryFormat::Contiguous);
  if (input.scalar_type() == at::kFloat) {
    softmax_rows<float>(input, bias, y, static_cast<float>(scale));
  } else {
    softmax_rows<c10::BFloat16>(input, bias, y, static_cast<float>(scale));
  }
  return y;
}

at::Tensor scaled_softmax_backward(const at::Tensor& grad_y, const at::Tensor& y, double scale) {
  if (!row_kernels_apply(y) || grad_y.scalar_type() != y.scalar_type() || grad_y.sizes() != y.sizes()) {
    const auto grad_x = at::_softmax_backward_data(grad_y, y, -1, y.scalar_type());
    return scale == 1.0 ? grad_x : grad_x * scale;
  }
  const auto dy = grad_y.contiguous();
  const auto output = y.contiguous();
  auto dx = at::empty_like(output, at::MemoryFormat::Contiguous);
  if (output.scalar_type() == at::kFloat) {
    softmax_backward_rows<float>(dy, output, dx, static_cast<float>(scale));
  } else {
    softmax_backward_rows<c10::BFloat16>(dy, output, dx, static_cast<float>(scale));
  }
  return dx;
}

at::Tensor scaled_softmax(const at::Tensor& x, double scale) {
  TORCH_CHECK(scale > 0.0, "scaled_softmax: the scale must be positive, got ", scale);
  // The TorchScript tracer cannot record a custom autograd function.
  if (!row_kernels_apply(x) || torch::jit::tracer::isTracing()) return (scale == 1.0 ? x : x * scale).softmax(-1);
  return ScaledSoftmax::apply(x, scale);
}

bool softmax_row_kernels_available() { return vector16::avx512_bf16_available(); }

#if defined(__x86_64__)
void scaled_softmax_row(const float* x, const float* bias, float* y, c10::BFloat16* rounded, int64_t n, int64_t padded,
                        float scale) {
  rows16::softmax(x, bias, y, rounded, n, padded, scale);
}

void scaled_softmax_backward_row(const float* dy, const c10::BFloat16* y, float* dx, c10::BFloat16* rounded, int64_t n,
                                 int64_t padded, float scale) {
  rows16::softmax_backward(dy, y, dx, rounded, n, padded, scale);
}
#else
void scaled_softmax_row(const float*, const float*, float*, c10::BFloat16*, int64_t, int64_t, float) {
  TORCH_CHECK(false, "scaled_softmax_row: an x86-64 kernel");
}

void scaled_softmax_backward_row(const float*, const c10::BFloat16*, float*, c10::BFloat16*, int64_t, int64_t, float) {
  TORCH_CHECK(false, "scaled_softmax_backward_row: an x86-64 kernel");
}
#endif

}  // namespace vit::models
