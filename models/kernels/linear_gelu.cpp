#include "models/kernels/linear_gelu.h"

#include "models/kernels/autocast_state.h"
#include "models/kernels/vector16.h"

#include <ATen/Functions.h>
#include <ATen/Parallel.h>
#include <ATen/TensorOperators.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/jit/frontend/tracer.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#if defined(__x86_64__)
#include "models/kernels/fp32_tiles.h"
#endif

namespace vit::models {
namespace {

constexpr int64_t kMinMultiplyAdds = int64_t{1} << 20;
constexpr int64_t kMaxInner = 4096;  // a panel of 4096 × 64 floats (1 MiB) stays in a core's L2

#if defined(__x86_64__)

using fp32_tiles::Operand;

constexpr int64_t kPanelWidth = 64;  // 4 vectors: 6 × 4 sums in registers
// Rows of the input per task, read from L2 for each panel of the weight; each task reads all the
// panels (measured 96-768 rows on ViT-S- and CIFAR-size layers: 384 and 768 best).
constexpr int64_t kRowsPerTask = 384;

// Φ(x) and φ(x) of 16 values, Φ through erf by Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), the
// approximation LibTorch's vectorized GELU uses; φ from the same exponential.
struct Gaussian {
  __m512 cdf, pdf;
};

VIT_AVX512F inline Gaussian gaussian_of(__m512 x) {
  constexpr float kP = 0.3275911F;
  constexpr float kA[] = {1.061405429F, -1.453152027F, 1.421413741F, -0.284496736F, 0.254829592F};
  constexpr float kSqrtHalf = 0.70710678118654752F, kInverseSqrt2Pi = 0.39894228040143268F;
  const auto one = _mm512_set1_ps(1.0F);
  const auto z = _mm512_mul_ps(x, _mm512_set1_ps(kSqrtHalf));
  // t = 1 / d by the 14-bit reciprocal and one Newton step (~1 ulp): a division costs several
  // times as much, and erf's approximation is 2^-22 off at best.
  const auto d = _mm512_fmadd_ps(_mm512_set1_ps(kP), _mm512_abs_ps(z), one);
  const auto estimate = _mm512_rcp14_ps(d);
  const auto t = _mm512_mul_ps(estimate, _mm512_fnmadd_ps(d, estimate, _mm512_set1_ps(2.0F)));
  auto polynomial = _mm512_set1_ps(kA[0]);
  for (int i = 1; i < 5; ++i) polynomial = _mm512_fmadd_ps(polynomial, t, _mm512_set1_ps(kA[i]));
  const auto gaussian = vector16::exp_of(_mm512_mul_ps(_mm512_set1_ps(-0.5F), _mm512_mul_ps(x, x)));
  const auto erf_of_abs = _mm512_fnmadd_ps(_mm512_mul_ps(polynomial, t), gaussian, one);
  // erf is odd: erf(z) takes z's sign bit.
  const auto sign = _mm512_and_si512(_mm512_castps_si512(z), _mm512_set1_epi32(static_cast<int>(0x80000000U)));
  const auto erf = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(erf_of_abs), sign));
  return {_mm512_mul_ps(_mm512_set1_ps(0.5F), _mm512_add_ps(one, erf)),
          _mm512_mul_ps(_mm512_set1_ps(kInverseSqrt2Pi), gaussian)};
}

// Writes a tile's sums + bias x: GELU(x) (`activated`) and, where kept for the backward, GELU'(x)
// (`derivative`, else null), from the same Φ(x) and φ(x).
struct BiasAndGelu {
  const float* bias;
  float* activated;
  float* derivative;
  int64_t row_stride;

  BiasAndGelu columns_from(int64_t column) const {
    return {bias == nullptr ? nullptr : bias + column, activated + column,
            derivative == nullptr ? nullptr : derivative + column, row_stride};
  }

  VIT_AVX512F __attribute__((always_inline)) void operator()(int64_t row, int v, __mmask16 lanes, __m512 sum) const {
    const auto x = bias == nullptr ? sum : _mm512_add_ps(sum, _mm512_maskz_loadu_ps(lanes, bias + 16 * v));
    const auto g = gaussian_of(x);
    const int64_t at = row * row_stride + 16 * v;
    _mm512_mask_storeu_ps(activated + at, lanes, _mm512_mul_ps(x, g.cdf));
    if (derivative != nullptr) _mm512_mask_storeu_ps(derivative + at, lanes, _mm512_fmadd_ps(x, g.pdf, g.cdf));
  }
};

int64_t panels_of(int64_t n) { return (n + kPanelWidth - 1) / kPanelWidth; }

// weight [n, k] -> panels [panels_of(n), k, 64]: panel p holds columns 64p … 64p + 63 of weightᵀ,
// row l contiguous (a last partial panel's columns past n are never read).
void pack_panels(const float* weight, int64_t n, int64_t k, float* panels) {
  at::parallel_for(0, panels_of(n), 1, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const int64_t columns = std::min(kPanelWidth, n - p * kPanelWidth);
      fp32_tiles::transpose(columns, k, weight + p * kPanelWidth * k, k, panels + p * k * kPanelWidth, kPanelWidth);
    }
  });
}

void multiply(const float* input, int64_t m, int64_t k, const float* panels, int64_t n, const BiasAndGelu& out) {
  const int64_t tasks = (m + kRowsPerTask - 1) / kRowsPerTask;
  const int64_t rows_per_task = (m + tasks - 1) / tasks;
  const Operand rows_of_input{input, k, 1};
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t first_row = task * rows_per_task, end_row = std::min(m, first_row + rows_per_task);
      for (int64_t p = 0; p < panels_of(n); ++p) {
        const int64_t columns = std::min(kPanelWidth, n - p * kPanelWidth);
        const int vectors = static_cast<int>((columns + 15) / 16);
        fp32_tiles::column_block_of(vectors, first_row, end_row, k, rows_of_input, panels + p * k * kPanelWidth,
                                    kPanelWidth, vector16::lanes(16 * (vectors - 1), columns),
                                    out.columns_from(p * kPanelWidth));
      }
    }
  });
}

#endif

struct Outputs {
  at::Tensor activated, derivative;
};

// GELU of the layer's output x, and GELU'(x) where keeps_derivative.
Outputs products(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias, bool keeps_derivative) {
  const int64_t k = weight.size(1), n = weight.size(0), m = input.numel() / k;
  RECORD_FUNCTION("vit::linear_gelu", std::vector<c10::IValue>({input.view({m, k}), weight.t()}));
  auto sizes = input.sizes().vec();
  sizes.back() = n;
  Outputs out;
  out.activated = at::empty(sizes, input.options());
  if (keeps_derivative) out.derivative = at::empty(sizes, input.options());
#if defined(__x86_64__)
  thread_local std::vector<float> panels;
  panels.resize(static_cast<size_t>(panels_of(n) * k * kPanelWidth));
  pack_panels(weight.data_ptr<float>(), n, k, panels.data());
  const auto pointer = [](const at::Tensor& t) { return t.defined() ? t.data_ptr<float>() : nullptr; };
  multiply(input.data_ptr<float>(), m, k, panels.data(), n,
           BiasAndGelu{pointer(bias), out.activated.data_ptr<float>(), pointer(out.derivative), n});
#endif
  return out;
}

// The operands as the kernel reads them: contiguous.
at::Tensor dense(const at::Tensor& t) { return t.defined() ? t.contiguous() : t; }

struct LinearGelu : public torch::autograd::Function<LinearGelu> {
  static at::Tensor forward(torch::autograd::AutogradContext* context, const at::Tensor& input,
                            const at::Tensor& weight, const at::Tensor& bias) {
    auto out = products(input, weight, bias, /*keeps_derivative=*/true);
    context->save_for_backward({input, weight, out.derivative});
    context->saved_data["has_bias"] = bias.defined();
    return out.activated;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 const torch::autograd::variable_list& output_grads) {
    const auto saved = context->get_saved_variables();
    const auto& input = saved[0];
    const auto& weight = saved[1];
    const auto& derivative = saved[2];
    const int64_t k = weight.size(1), n = weight.size(0);
    const auto rows = (output_grads[0] * derivative).view({-1, n});
    at::Tensor grad_input, grad_weight, grad_bias;
    if (context->needs_input_grad(0)) grad_input = rows.mm(weight).view(input.sizes());
    if (context->needs_input_grad(1)) grad_weight = rows.t().mm(input.reshape({-1, k}));
    if (context->saved_data["has_bias"].toBool() && context->needs_input_grad(2)) grad_bias = rows.sum(0);
    return {grad_input, grad_weight, grad_bias};
  }
};

}  // namespace

bool linear_gelu_applies(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias) {
  if (!vector16::avx512f_available() || !input.device().is_cpu() || input.scalar_type() != at::kFloat ||
      input.dim() < 2 || weight.dim() != 2 || weight.scalar_type() != at::kFloat || input.size(-1) != weight.size(1) ||
      torch::jit::tracer::isTracing() || autocast_enabled(c10::DeviceType::CPU)) {
    return false;
  }
  if (bias.defined() && (bias.dim() != 1 || bias.scalar_type() != at::kFloat || bias.size(0) != weight.size(0))) {
    return false;
  }
  const int64_t k = weight.size(1), rows = k == 0 ? 0 : input.numel() / k;
  return k <= kMaxInner && rows * weight.size(0) * k >= kMinMultiplyAdds;
}

at::Tensor linear_gelu(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias) {
  const auto x = dense(input), w = dense(weight), b = dense(bias);
  const bool records_gradient = at::GradMode::is_enabled() && (input.requires_grad() || weight.requires_grad() ||
                                                               (bias.defined() && bias.requires_grad()));
  if (records_gradient) return LinearGelu::apply(x, w, b);
  return products(x, w, b, /*keeps_derivative=*/false).activated;
}

}  // namespace vit::models
