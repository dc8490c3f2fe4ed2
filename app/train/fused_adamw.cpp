#include "app/train/fused_adamw.h"

#include "app/train/loss_closure.h"
#include "app/train/optimizer_state_key.h"

#include <cmath>
#include <utility>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace vit::app {
namespace {

// LibTorch's step, one element; every operation rounds to fp32 on its own, as its kernels do but
// for their multiply-adds. The vector loop below repeats this order lane by lane.
inline void update_element(const AdamWElements& e, int64_t i) {
  const float grad = e.grad[i];
  const float exp_avg = e.exp_avg[i] * e.beta1 + e.one_minus_beta1 * grad;
  const float exp_avg_sq = e.exp_avg_sq[i] * e.beta2 + e.one_minus_beta2 * grad * grad;
  const float denom = std::sqrt(exp_avg_sq) / e.bias_correction2_sqrt + e.eps;
  e.exp_avg[i] = exp_avg;
  e.exp_avg_sq[i] = exp_avg_sq;
  e.param[i] = e.param[i] * e.decay + e.neg_step_size * exp_avg / denom;
}

void update_portable(const AdamWElements& elements, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) update_element(elements, i);
}

#if defined(__x86_64__)
// AVX2 without FMA, so that the compiler cannot fuse a multiply-add the scalar loop rounds twice.
__attribute__((target("avx2"))) void update_avx2(const AdamWElements& e, int64_t begin, int64_t end) {
  const __m256 beta1 = _mm256_set1_ps(e.beta1), one_minus_beta1 = _mm256_set1_ps(e.one_minus_beta1);
  const __m256 beta2 = _mm256_set1_ps(e.beta2), one_minus_beta2 = _mm256_set1_ps(e.one_minus_beta2);
  const __m256 correction = _mm256_set1_ps(e.bias_correction2_sqrt), eps = _mm256_set1_ps(e.eps);
  const __m256 decay = _mm256_set1_ps(e.decay), neg_step_size = _mm256_set1_ps(e.neg_step_size);
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const __m256 grad = _mm256_loadu_ps(e.grad + i);
    const __m256 exp_avg =
        _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(e.exp_avg + i), beta1), _mm256_mul_ps(one_minus_beta1, grad));
    const __m256 exp_avg_sq = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(e.exp_avg_sq + i), beta2),
                                            _mm256_mul_ps(_mm256_mul_ps(one_minus_beta2, grad), grad));
    const __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(exp_avg_sq), correction), eps);
    _mm256_storeu_ps(e.exp_avg + i, exp_avg);
    _mm256_storeu_ps(e.exp_avg_sq + i, exp_avg_sq);
    _mm256_storeu_ps(e.param + i, _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(e.param + i), decay),
                                                _mm256_div_ps(_mm256_mul_ps(neg_step_size, exp_avg), denom)));
  }
  update_portable(e, i, end);
}

bool avx2_available() {
  static const bool available = __builtin_cpu_supports("avx2");
  return available;
}
#endif

bool is_plain_fp32_cpu(const torch::Tensor& tensor) {
  return is_plain_cpu(tensor) && tensor.scalar_type() == torch::kFloat32;
}

}  // namespace

void update_adamw_elements(const AdamWElements& elements, int64_t begin, int64_t end, bool portable) {
#if defined(__x86_64__)
  if (!portable && avx2_available()) {
    update_avx2(elements, begin, end);
    return;
  }
#endif
  update_portable(elements, begin, end);
}

FusedAdamW::FusedAdamW(std::vector<torch::optim::OptimizerParamGroup> groups, torch::optim::AdamWOptions defaults,
                       BatchShards shards)
    : torch::optim::AdamW(std::move(groups), std::move(defaults)), shards_(std::move(shards)) {}

torch::Tensor FusedAdamW::step(LossClosure closure) {
  const auto loss = evaluate_loss_closure(closure);
  // Decided for the whole optimizer before any state changes: a parameter left out of the pass
  // would have to take LibTorch's step, and a mixed step is not worth its code.
  const auto libtorch_step = [&] {
    torch::optim::AdamW::step();
    return loss;
  };
  struct Pending {
    torch::Tensor parameter;
    const torch::optim::AdamWOptions* options;
    OptimizerStateKey key;
  };
  std::vector<Pending> pending;
  for (const auto& group : param_groups_) {
    const auto& options = static_cast<const torch::optim::AdamWOptions&>(group.options());
    if (options.amsgrad()) return libtorch_step();
    for (const auto& parameter : group.params()) {
      if (!parameter.grad().defined()) continue;
      if (!is_plain_fp32_cpu(parameter) || !is_plain_fp32_cpu(parameter.grad())) {
        return libtorch_step();
      }
      auto key = optimizer_state_key(parameter);
      const auto found = state_.find(key);
      if (found != state_.end()) {
        const auto& state = static_cast<const torch::optim::AdamWParamState&>(*found->second);
        if (!is_plain_fp32_cpu(state.exp_avg()) || !is_plain_fp32_cpu(state.exp_avg_sq())) {
          return libtorch_step();
        }
      }
      pending.push_back({parameter, &options, std::move(key)});
    }
  }

  torch::NoGradGuard no_grad;
  std::vector<AdamWElements> parameters;
  std::vector<torch::Tensor> elements;  // each parameter's elements, a tensor of one dimension
  for (auto& [parameter, options, key] : pending) {
    auto& slot = state_[key];
    if (!slot) {
      auto fresh = std::make_unique<torch::optim::AdamWParamState>();
      fresh->exp_avg(torch::zeros_like(parameter, torch::MemoryFormat::Preserve));
      fresh->exp_avg_sq(torch::zeros_like(parameter, torch::MemoryFormat::Preserve));
      slot = std::move(fresh);
    }
    auto& state = static_cast<torch::optim::AdamWParamState&>(*slot);
    state.step(state.step() + 1);
    const double step = static_cast<double>(state.step());
    const auto [beta1, beta2] = options->betas();
    parameters.push_back(
        {parameter.data_ptr<float>(), parameter.grad().data_ptr<float>(), state.exp_avg().data_ptr<float>(),
         state.exp_avg_sq().data_ptr<float>(), static_cast<float>(1.0 - options->lr() * options->weight_decay()),
         static_cast<float>(beta1), static_cast<float>(1.0 - beta1), static_cast<float>(beta2),
         static_cast<float>(1.0 - beta2), static_cast<float>(std::sqrt(1.0 - std::pow(beta2, step))),
         static_cast<float>(options->eps()), static_cast<float>(-options->lr() / (1.0 - std::pow(beta1, step)))});
    elements.push_back(parameter.view(-1));
  }
  // An element's update is some ten times an addition's work.
  shards_.run_over_rows(
      elements, [&](size_t k, int64_t begin, int64_t end) { update_adamw_elements(parameters[k], begin, end); },
      BatchShards::kShareElements / 8);
  return loss;
}

}  // namespace vit::app
