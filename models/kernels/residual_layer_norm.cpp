#include "models/kernels/residual_layer_norm.h"

#include "models/kernels/bf16_products.h"
#include "models/kernels/optional_input.h"
#include "models/kernels/vector8.h"

#include <ATen/Functions.h>
#include <ATen/Parallel.h>
#include <ATen/TensorOperators.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/jit/frontend/tracer.h>

#include <cmath>
#include <type_traits>
#include <utility>

namespace vit::models {
namespace {

#if defined(__x86_64__)

using vector8::horizontal_sum;
using vector8::load;
using vector8::store;

// A row of d values: the first d - d % 8 go in vectors of 8, the rest one by one.
inline int64_t vectorized(int64_t d) { return d - d % 8; }

struct RowMoments {
  float mean;
  float rstd;  // 1 / sqrt(variance + eps)
};

// A branch's value or gradient times its sample's factor, rounded to bf16 where the branch is
// (Branch not float): what multiplying the branch by its factor in the branch's dtype gives.
template <typename Branch>
constexpr bool kRoundsToBf16 = !std::is_same_v<Branch, float>;

// The product is rounded before anything adds it: the empty asm keeps the compiler from contracting
// it and the add into one fused multiply-add, whose single rounding would differ from DropPath's
// multiply followed by LibTorch's add.
template <typename Branch>
VIT_AVX2_FMA inline __m256 times_factor(__m256 x, __m256 factor) {
  auto product = _mm256_mul_ps(x, factor);
  __asm__("" : "+x"(product));
  return kRoundsToBf16<Branch> ? vector8::bf16_rounded(product) : product;
}

template <typename Branch>
inline float times_factor(float x, float factor) {
  float product = x * factor;
  __asm__("" : "+x"(product));
  return kRoundsToBf16<Branch> ? static_cast<float>(c10::BFloat16(product)) : product;
}

// The gradient of a branch of type Branch: the sum's gradient, rounded to bf16 for a bf16 branch,
// then times the sample's factor where one is given (a scaled branch), rounded again.
template <typename Branch>
VIT_AVX2_FMA inline __m256 branch_gradient(__m256 grad, bool scaled, __m256 factor) {
  if (!scaled) return grad;  // a bf16 branch's store rounds it
  return times_factor<Branch>(kRoundsToBf16<Branch> ? vector8::bf16_rounded(grad) : grad, factor);
}

template <typename Branch>
inline float branch_gradient(float grad, bool scaled, float factor) {
  if (!scaled) return grad;
  return times_factor<Branch>(kRoundsToBf16<Branch> ? static_cast<float>(c10::BFloat16(grad)) : grad, factor);
}

// One row: sum = residual + (branch + branch_bias) · factor, the bias where not null and the
// factor where `scaled` (the row's sample's), then normalized = (sum − mean) · rstd · weight + bias,
// the variance from a second pass over the row just written (still in L1).
template <typename Branch, typename Normalized>
VIT_AVX2_FMA RowMoments forward_row(const float* residual, const Branch* branch, const float* branch_bias, bool scaled,
                                    float factor, const float* weight, const float* bias, float* sum,
                                    Normalized* normalized, int64_t d, float eps) {
  const int64_t v = vectorized(d);
  const auto factors = _mm256_set1_ps(factor);
  auto total = _mm256_setzero_ps();
  float tail_total = 0.0F;
  for (int64_t j = 0; j < v; j += 8) {
    auto added = load(branch + j);
    if (branch_bias != nullptr) added = _mm256_add_ps(added, load(branch_bias + j));
    if (scaled) added = times_factor<Branch>(added, factors);
    const auto s = _mm256_add_ps(load(residual + j), added);
    store(sum + j, s);
    total = _mm256_add_ps(total, s);
  }
  for (int64_t j = v; j < d; ++j) {
    float added = static_cast<float>(branch[j]);
    if (branch_bias != nullptr) added += branch_bias[j];
    if (scaled) added = times_factor<Branch>(added, factor);
    sum[j] = residual[j] + added;
    tail_total += sum[j];
  }
  const float mean = (horizontal_sum(total) + tail_total) / static_cast<float>(d);
  const auto means = _mm256_set1_ps(mean);
  auto squares = _mm256_setzero_ps();
  float tail_squares = 0.0F;
  for (int64_t j = 0; j < v; j += 8) {
    const auto centered = _mm256_sub_ps(load(sum + j), means);
    squares = _mm256_fmadd_ps(centered, centered, squares);
  }
  for (int64_t j = v; j < d; ++j) tail_squares += (sum[j] - mean) * (sum[j] - mean);
  const float variance = (horizontal_sum(squares) + tail_squares) / static_cast<float>(d);
  const float rstd = 1.0F / std::sqrt(variance + eps);
  const auto rstds = _mm256_set1_ps(rstd);
  for (int64_t j = 0; j < v; j += 8) {
    const auto unit = _mm256_mul_ps(_mm256_sub_ps(load(sum + j), means), rstds);
    store(normalized + j, _mm256_fmadd_ps(unit, load(weight + j), load(bias + j)));
  }
  for (int64_t j = v; j < d; ++j) normalized[j] = static_cast<Normalized>((sum[j] - mean) * rstd * weight[j] + bias[j]);
  return {mean, rstd};
}

// One row of the gradient. With g = dnormalized · weight and x̂ = (sum − mean) · rstd:
//   dsum = dsum_out + rstd · (g − mean(g) − x̂ · mean(g · x̂)),
// the residual's gradient dsum and the branch's dsum (times the factor where `scaled`) in its dtype
// (where not null); the weight and bias gradients gain dnormalized · x̂ and dnormalized, the
// branch's bias (where not null) the branch's gradient. Null incoming gradients are zeros.
template <typename Branch, typename Normalized>
VIT_AVX2_FMA void backward_row(const Normalized* grad_normalized, const float* grad_sum, const float* sum,
                               const float* weight, RowMoments moments, bool scaled, float factor, int64_t d,
                               float* grad_residual, Branch* grad_branch, float* grad_branch_bias, float* grad_weight,
                               float* grad_bias) {
  const int64_t v = vectorized(d);
  const auto factors = _mm256_set1_ps(factor);
  const auto means = _mm256_set1_ps(moments.mean), rstds = _mm256_set1_ps(moments.rstd);
  float mean_g = 0.0F, mean_g_unit = 0.0F;
  if (grad_normalized != nullptr) {
    auto g_total = _mm256_setzero_ps(), g_unit_total = _mm256_setzero_ps();
    float g_tail = 0.0F, g_unit_tail = 0.0F;
    for (int64_t j = 0; j < v; j += 8) {
      const auto upstream = load(grad_normalized + j);
      const auto unit = _mm256_mul_ps(_mm256_sub_ps(load(sum + j), means), rstds);
      const auto g = _mm256_mul_ps(upstream, load(weight + j));
      g_total = _mm256_add_ps(g_total, g);
      g_unit_total = _mm256_fmadd_ps(g, unit, g_unit_total);
      store(grad_weight + j, _mm256_fmadd_ps(upstream, unit, load(grad_weight + j)));
      store(grad_bias + j, _mm256_add_ps(load(grad_bias + j), upstream));
    }
    for (int64_t j = v; j < d; ++j) {
      const float upstream = static_cast<float>(grad_normalized[j]);
      const float unit = (sum[j] - moments.mean) * moments.rstd;
      const float g = upstream * weight[j];
      g_tail += g;
      g_unit_tail += g * unit;
      grad_weight[j] += upstream * unit;
      grad_bias[j] += upstream;
    }
    mean_g = (horizontal_sum(g_total) + g_tail) / static_cast<float>(d);
    mean_g_unit = (horizontal_sum(g_unit_total) + g_unit_tail) / static_cast<float>(d);
  }
  const auto mean_gs = _mm256_set1_ps(mean_g), mean_g_units = _mm256_set1_ps(mean_g_unit);
  for (int64_t j = 0; j < v; j += 8) {
    auto grad = grad_sum != nullptr ? load(grad_sum + j) : _mm256_setzero_ps();
    if (grad_normalized != nullptr) {
      const auto unit = _mm256_mul_ps(_mm256_sub_ps(load(sum + j), means), rstds);
      const auto g = _mm256_mul_ps(load(grad_normalized + j), load(weight + j));
      const auto centered = _mm256_sub_ps(_mm256_sub_ps(g, mean_gs), _mm256_mul_ps(unit, mean_g_units));
      grad = _mm256_fmadd_ps(rstds, centered, grad);
    }
    store(grad_residual + j, grad);
    const auto of_branch = branch_gradient<Branch>(grad, scaled, factors);
    if (grad_branch != nullptr) store(grad_branch + j, of_branch);
    if (grad_branch_bias != nullptr) {
      store(grad_branch_bias + j, _mm256_add_ps(load(grad_branch_bias + j), of_branch));
    }
  }
  for (int64_t j = v; j < d; ++j) {
    float grad = grad_sum != nullptr ? grad_sum[j] : 0.0F;
    if (grad_normalized != nullptr) {
      const float unit = (sum[j] - moments.mean) * moments.rstd;
      const float g = static_cast<float>(grad_normalized[j]) * weight[j];
      grad += moments.rstd * (g - mean_g - unit * mean_g_unit);
    }
    grad_residual[j] = grad;
    const float of_branch = branch_gradient<Branch>(grad, scaled, factor);
    if (grad_branch != nullptr) grad_branch[j] = static_cast<Branch>(of_branch);
    if (grad_branch_bias != nullptr) grad_branch_bias[j] += of_branch;
  }
}

template <typename T>
T* data_of(const at::Tensor& t) {
  if constexpr (std::is_same_v<T, vector8::Bf16Value>) {
    return reinterpret_cast<T*>(t.data_ptr<float>());
  } else {
    return t.data_ptr<T>();
  }
}

template <typename T>
T* data_or_null(const at::Tensor& t) {
  return t.defined() ? data_of<T>(t) : nullptr;
}

// Each row's sample's factor in `factors` (one per sample, fp32; undefined: none).
struct RowFactors {
  const float* factors;
  int64_t rows_per_sample;

  RowFactors(const at::Tensor& per_sample, int64_t rows)
      : factors(data_or_null<float>(per_sample)),
        rows_per_sample(per_sample.defined() ? rows / per_sample.numel() : 1) {}
  bool scaled() const { return factors != nullptr; }
  float of(int64_t row) const { return factors != nullptr ? factors[row / rows_per_sample] : 1.0F; }
};

template <typename Branch, typename Normalized>
void forward_rows(const at::Tensor& residual, const at::Tensor& branch, const at::Tensor& branch_bias,
                  const at::Tensor& branch_factors, const at::Tensor& weight, const at::Tensor& bias, float eps,
                  const at::Tensor& sum, const at::Tensor& normalized, const at::Tensor& moments) {
  const int64_t d = residual.size(-1), rows = residual.numel() / d;
  const float* const in = residual.data_ptr<float>();
  const Branch* const added = data_of<Branch>(branch);
  const float* const added_bias = data_or_null<float>(branch_bias);
  const RowFactors factors(branch_factors, rows);
  const float* const w = weight.data_ptr<float>();
  const float* const b = bias.data_ptr<float>();
  float* const out_sum = sum.data_ptr<float>();
  Normalized* const out_normalized = data_of<Normalized>(normalized);
  auto* const row_moments = reinterpret_cast<RowMoments*>(moments.data_ptr<float>());
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t offset = row * d;
    row_moments[row] = forward_row(in + offset, added + offset, added_bias, factors.scaled(), factors.of(row), w, b,
                                   out_sum + offset, out_normalized + offset, d, eps);
  }
}

template <typename Branch, typename Normalized>
void backward_rows(const at::Tensor& grad_normalized, const at::Tensor& grad_sum, const at::Tensor& sum,
                   const at::Tensor& weight, const at::Tensor& moments, const at::Tensor& branch_factors,
                   const at::Tensor& grad_residual, const at::Tensor& grad_branch, const at::Tensor& grad_branch_bias,
                   const at::Tensor& grad_weight, const at::Tensor& grad_bias) {
  const int64_t d = sum.size(-1), rows = sum.numel() / d;
  const RowFactors factors(branch_factors, rows);
  const auto* const row_moments = reinterpret_cast<const RowMoments*>(moments.data_ptr<float>());
  const Normalized* const gn = data_or_null<Normalized>(grad_normalized);
  const float* const gs = data_or_null<float>(grad_sum);
  Branch* const gb = data_or_null<Branch>(grad_branch);
  float* const gbb = data_or_null<float>(grad_branch_bias);
  const float* const s = sum.data_ptr<float>();
  const float* const w = weight.data_ptr<float>();
  float* const gr = grad_residual.data_ptr<float>();
  float* const gw = grad_weight.data_ptr<float>();
  float* const gbias = grad_bias.data_ptr<float>();
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t offset = row * d;
    backward_row(gn != nullptr ? gn + offset : nullptr, gs != nullptr ? gs + offset : nullptr, s + offset, w,
                 row_moments[row], factors.scaled(), factors.of(row), d, gr + offset,
                 gb != nullptr ? gb + offset : nullptr, gbb, gw, gbias);
  }
}

bool vector_kernels_available() { return vector8::avx2_fma_available(); }

#else

bool vector_kernels_available() { return false; }

template <typename Branch, typename Normalized>
void forward_rows(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                  const at::Tensor&, float, const at::Tensor&, const at::Tensor&, const at::Tensor&) {}

template <typename Branch, typename Normalized>
void backward_rows(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                   const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
                   const at::Tensor&) {}

#endif

bool is_float_or_bf16(at::ScalarType type) { return type == at::kFloat || type == at::kBFloat16; }

bool is_plain_cpu(const at::Tensor& t, at::ScalarType type) {
  return t.defined() && t.device().is_cpu() && t.layout() == at::kStrided && t.scalar_type() == type &&
         t.is_contiguous();
}

// The factors as the kernel reads them: one fp32 per sample of a residual [B, ..., D] (exact for
// bf16 ones), or undefined.
at::Tensor factors_per_sample(const at::Tensor& factors) {
  return factors.defined() ? factors.to(at::kFloat).reshape({-1}).contiguous() : factors;
}

bool kernel_applies(const at::Tensor& residual, const ResidualBranch& branch, const at::Tensor& weight,
                    const at::Tensor& bias, at::ScalarType normalized_dtype) {
  if (!residual_layer_norm_runs_kernel(residual)) return false;
  if (!is_plain_cpu(residual, at::kFloat) || residual.dim() == 0 || residual.numel() == 0) return false;
  const auto& value = branch.value;
  if (!value.defined() || !is_float_or_bf16(value.scalar_type()) || !is_plain_cpu(value, value.scalar_type()) ||
      value.sizes() != residual.sizes()) {
    return false;
  }
  // Factors of another dtype than the branch's would be applied in another (promoted) dtype.
  const auto branch_dtype = branch.bf16_values ? at::kBFloat16 : value.scalar_type();
  if (branch.factors.defined() && (residual.dim() < 2 || branch.factors.numel() != residual.size(0) ||
                                   !branch.factors.device().is_cpu() || branch.factors.scalar_type() != branch_dtype)) {
    return false;
  }
  const int64_t d = residual.size(-1);
  const auto is_row_parameter = [d](const at::Tensor& t) {
    return is_plain_cpu(t, at::kFloat) && t.dim() == 1 && t.size(0) == d;
  };
  return is_row_parameter(weight) && is_row_parameter(bias) &&
         (!branch.bias.defined() || is_row_parameter(branch.bias)) && is_float_or_bf16(normalized_dtype);
}

template <typename T>
struct Type {
  using type = T;
};

// Calls f(Type<Branch>{}, Type<Normalized>{}) for the branch's representation (fp32, bf16, or bf16
// values in fp32) and the normalized rows' (the same three).
template <typename F>
void dispatch(at::ScalarType branch, bool branch_bf16_values, at::ScalarType normalized, bool bf16_values, F&& f) {
  const auto with_branch = [&](auto normalized_type) {
    if (branch_bf16_values) {
      f(Type<vector8::Bf16Value>{}, normalized_type);
    } else if (branch == at::kBFloat16) {
      f(Type<c10::BFloat16>{}, normalized_type);
    } else {
      f(Type<float>{}, normalized_type);
    }
  };
  if (bf16_values) {
    with_branch(Type<vector8::Bf16Value>{});
  } else if (normalized == at::kBFloat16) {
    with_branch(Type<c10::BFloat16>{});
  } else {
    with_branch(Type<float>{});
  }
}

// Differentiable with respect to residual, branch, weight and bias, and to the branch's bias where
// given (optional inputs: the custom function takes no undefined tensor; the factors, per sample in
// fp32, get no gradient). `branch_bf16_values`: an fp32 branch read as bf16 values, its gradient
// rounded to bf16 (in fp32) apart from the residual's.
struct ResidualLayerNorm : public torch::autograd::Function<ResidualLayerNorm> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* context, const at::Tensor& residual,
                                                const at::Tensor& branch,
                                                const c10::optional<at::Tensor>& optional_branch_bias,
                                                const c10::optional<at::Tensor>& optional_branch_factors,
                                                const at::Tensor& weight, const at::Tensor& bias, double eps,
                                                at::ScalarType normalized_dtype, bool bf16_values,
                                                bool branch_bf16_values) {
    const auto branch_bias = optional_branch_bias.value_or(at::Tensor());
    const auto branch_factors = optional_branch_factors.value_or(at::Tensor());
    const int64_t rows = residual.numel() / residual.size(-1);
    auto sum = at::empty_like(residual);
    auto normalized = at::empty(residual.sizes(), residual.options().dtype(normalized_dtype));
    auto moments = at::empty({rows, 2}, residual.options());
    dispatch(branch.scalar_type(), branch_bf16_values, normalized_dtype, bf16_values,
             [&](auto branch_type, auto normalized_type) {
               forward_rows<typename decltype(branch_type)::type, typename decltype(normalized_type)::type>(
                   residual, branch, branch_bias, branch_factors, weight, bias, static_cast<float>(eps), sum,
                   normalized, moments);
             });
    // Undefined factors are saved as an empty tensor.
    context->save_for_backward({sum, weight, moments, branch_factors.defined() ? branch_factors : at::empty({0})});
    context->saved_data["branch_dtype"] = static_cast<int64_t>(branch.scalar_type());
    context->saved_data["bf16_values"] = bf16_values;
    context->saved_data["branch_bf16_values"] = branch_bf16_values;
    context->saved_data["branch_bias"] = branch_bias.defined();
    // An output that nothing reads gets an undefined gradient (not a tensor of zeros to read).
    context->set_materialize_grads(false);
    return {sum, normalized};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 const torch::autograd::variable_list& output_grads) {
    const auto saved = context->get_saved_variables();
    const auto &sum = saved[0], &weight = saved[1], &moments = saved[2];
    const auto branch_factors = saved[3].numel() > 0 ? saved[3] : at::Tensor();
    const auto branch_dtype = static_cast<at::ScalarType>(context->saved_data["branch_dtype"].toInt());
    const auto grad_sum = output_grads[0].defined() ? output_grads[0].contiguous() : at::Tensor();
    const auto grad_normalized = output_grads[1].defined() ? output_grads[1].contiguous() : at::Tensor();
    const bool branch_bf16_values = context->saved_data["branch_bf16_values"].toBool();
    auto grad_residual = at::empty_like(sum);
    // An fp32 branch's gradient is the residual's, but for one rounded to bf16 or scaled.
    const bool branch_shares_gradient = branch_dtype == at::kFloat && !branch_bf16_values && !branch_factors.defined();
    auto grad_branch = branch_shares_gradient ? grad_residual : at::empty_like(sum, sum.options().dtype(branch_dtype));
    auto grad_weight = at::zeros_like(weight), grad_bias = at::zeros_like(weight);
    const bool branch_bias = context->saved_data["branch_bias"].toBool();
    const auto grad_branch_bias = branch_bias ? at::zeros_like(weight) : at::Tensor();
    const auto normalized_dtype = grad_normalized.defined() ? grad_normalized.scalar_type() : at::kFloat;
    const bool bf16_values = context->saved_data["bf16_values"].toBool();
    dispatch(branch_dtype, branch_bf16_values, normalized_dtype, bf16_values,
             [&](auto branch_type, auto normalized_type) {
               backward_rows<typename decltype(branch_type)::type, typename decltype(normalized_type)::type>(
                   grad_normalized, grad_sum, sum, weight, moments, branch_factors, grad_residual,
                   branch_shares_gradient ? at::Tensor() : grad_branch, grad_branch_bias, grad_weight, grad_bias);
             });
    return {grad_residual, grad_branch,  grad_branch_bias, at::Tensor(), grad_weight,
            grad_bias,     at::Tensor(), at::Tensor(),     at::Tensor(), at::Tensor()};
  }

  static NormalizedSum run(const at::Tensor& residual, const ResidualBranch& branch, const at::Tensor& weight,
                           const at::Tensor& bias, double eps, at::ScalarType normalized_dtype, bool bf16_values) {
    const auto outputs =
        apply(residual, branch.value, optional_input(branch.bias), optional_input(factors_per_sample(branch.factors)),
              weight, bias, eps, normalized_dtype, bf16_values, branch.bf16_values);
    return {outputs[0], outputs[1]};
  }
};

}  // namespace

bool residual_layer_norm_runs_kernel(const at::Tensor& residual) {
  return vector_kernels_available() && at::get_num_threads() == 1 && !torch::jit::tracer::isTracing() &&
         residual.device().is_cpu();
}

ResidualBranch::ResidualBranch(at::Tensor plain) : value(std::move(plain)) {}

ResidualBranch ResidualBranch::with_bias(at::Tensor product, at::Tensor bias) {
  ResidualBranch branch(std::move(product));
  branch.bias = std::move(bias);
  return branch;
}

ResidualBranch ResidualBranch::of_bf16_values(at::Tensor product) {
  ResidualBranch branch(std::move(product));
  branch.bf16_values = true;
  return branch;
}

ResidualBranch ResidualBranch::times(at::Tensor per_sample_factors) const {
  ResidualBranch branch = *this;
  branch.factors = std::move(per_sample_factors);
  return branch;
}

at::Tensor residual_add(const at::Tensor& residual, const ResidualBranch& branch) {
  auto term = branch.bf16_values ? bf16_values(branch.value)
                                 : (branch.bias.defined() ? branch.value + branch.bias : branch.value);
  if (branch.factors.defined()) term = branch.bf16_values ? bf16_values(term * branch.factors) : term * branch.factors;
  return residual + term;
}

NormalizedSum residual_layer_norm(const at::Tensor& residual, const ResidualBranch& branch, const at::Tensor& weight,
                                  const at::Tensor& bias, double eps, at::ScalarType normalized_dtype) {
  TORCH_CHECK(!branch.bf16_values || (branch.value.scalar_type() == at::kFloat && !branch.bias.defined()),
              "residual_layer_norm: a branch of bf16 values is an fp32 product with its bias");
  if (!kernel_applies(residual, branch, weight, bias, normalized_dtype)) {
    auto sum = residual_add(residual, branch);
    auto normalized = at::layer_norm(sum, {sum.size(-1)}, weight, bias, eps);
    return {sum, normalized.scalar_type() == normalized_dtype ? normalized : normalized.to(normalized_dtype)};
  }
  return ResidualLayerNorm::run(residual, branch, weight, bias, eps, normalized_dtype, false);
}

NormalizedSum residual_layer_norm_to_bf16_values(const at::Tensor& residual, const ResidualBranch& branch,
                                                 const at::Tensor& weight, const at::Tensor& bias, double eps) {
  if (!kernel_applies(residual, branch, weight, bias, at::kFloat)) {
    const auto [sum, normalized] = residual_layer_norm(residual, branch, weight, bias, eps, at::kBFloat16);
    return {sum, normalized.to(at::kFloat)};
  }
  return ResidualLayerNorm::run(residual, branch, weight, bias, eps, at::kFloat, true);
}

}  // namespace vit::models
