#include "models/layers/init.h"

#include <torch/nn/modules/linear.h>

#include <cmath>

namespace vit::models {

void trunc_normal_(torch::Tensor tensor, double std) {
  torch::NoGradGuard no_grad;
  const auto normal_cdf = [](double x) { return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))); };
  const double low = normal_cdf(-2.0);
  const double high = normal_cdf(2.0);
  // Uniform on [2 low - 1, 2 high - 1], then erfinv maps it onto the truncated standard normal.
  tensor.uniform_(2.0 * low - 1.0, 2.0 * high - 1.0);
  tensor.erfinv_().mul_(std * std::sqrt(2.0)).clamp_(-2.0 * std, 2.0 * std);
}

void init_linear_layers(torch::nn::Module& model, double std) {
  torch::NoGradGuard no_grad;
  for (auto& module : model.modules(/*include_self=*/false)) {
    if (auto* linear = module->as<torch::nn::LinearImpl>()) {
      trunc_normal_(linear->weight, std);
      if (linear->bias.defined()) linear->bias.zero_();
    }
  }
}

}  // namespace vit::models
