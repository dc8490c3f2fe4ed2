#include "models/layers/mlp.h"

#include "models/kernels/amx_linear.h"
#include "models/kernels/autocast_state.h"
#include "models/kernels/bf16_gelu.h"
#include "models/kernels/bf16_products.h"
#include "models/kernels/linear_gelu.h"

#include <torch/csrc/jit/frontend/tracer.h>

#include <algorithm>

namespace vit::models {

MlpImpl::MlpImpl(const MlpOptions& options)
    : fc1_(register_module("fc1", Linear(options.in_features, options.hidden_features))),
      act_(register_module("act", torch::nn::GELU())),
      drop1_(register_module("drop1", Dropout(options.drop))),
      fc2_(register_module("fc2", Linear(options.hidden_features, options.in_features))),
      drop2_(register_module("drop2", Dropout(options.drop))) {}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  if (fuses_gelu(x)) return drop2_(hidden_and_output_in_fp32(bf16_values(x)).to(torch::kBFloat16));
  if (runs_on_tiles(x)) return drop2_(amx_mlp(x, fc1_->weight, fc1_->bias, fc2_->weight, fc2_->bias));
  return drop2_(fc2_(hidden(x)));
}

bool MlpImpl::leaves_bias() const { return fc2_->bias.defined() && (drop2_->p() == 0.0 || !is_training()); }

std::pair<torch::Tensor, torch::Tensor> MlpImpl::forward_leaving_bias(const torch::Tensor& x) {
  TORCH_CHECK(leaves_bias(), "Mlp: forward_leaving_bias without a bias to leave, or with a dropout after it");
  if (runs_on_tiles(x)) return {amx_mlp(x, fc1_->weight, fc1_->bias, fc2_->weight, torch::Tensor()), fc2_->bias};
  return {models::linear(hidden(x), fc2_->weight, torch::Tensor()), fc2_->bias};
}

// Under bf16 autocast on AMX's tiles, where GELU would add fc1's bias, both layers and GELU run in
// one node that applies GELU and its derivative as the products are written (models/kernels/amx_linear.h).
bool MlpImpl::runs_on_tiles(const torch::Tensor& x) const {
  return gelu_adds_bias(x) && !bf16_products_on_blas(x) && amx_mlp_applies(x, fc1_->weight, fc2_->weight);
}

torch::Tensor MlpImpl::hidden(const torch::Tensor& x) {
  if (fc1_writes_gelu(x)) return linear_gelu(x, fc1_->weight, fc1_->bias);
  // On the fp32 kernels linear() rounds the product to bf16, after which the bias would round it again.
  if (gelu_adds_bias(x) && !bf16_products_on_blas(x)) {
    return gelu_of_bf16_product_plus_bias(models::linear(x, fc1_->weight, torch::Tensor()), fc1_->bias);
  }
  return drop1_(activated(fc1_(x)));
}

// In fp32, fc1 writes GELU of its output as it writes the output (models/kernels/linear_gelu.h),
// where no dropout stands between them.
bool MlpImpl::fc1_writes_gelu(const torch::Tensor& x) const {
  return linear_gelu_applies(x, fc1_->weight, fc1_->bias) && (drop1_->p() == 0.0 || !is_training());
}

// Under bf16 autocast, fc1's bias is added in GELU's pass (models/kernels/bf16_gelu.h) where the
// hidden activations outgrow the cache and no dropout stands between them.
bool MlpImpl::gelu_adds_bias(const torch::Tensor& x) const {
  const int64_t product_elements = x.numel() / std::max<int64_t>(x.size(-1), 1) * fc1_->weight.size(0);
  return fc1_->bias.defined() && x.device().is_cpu() && linear_input_dtype(x) == torch::kBFloat16 &&
         gelu_of_bf16_values_vectorized() && bias_in_gelu_pays(product_elements) && !torch::jit::tracer::isTracing() &&
         (drop1_->p() == 0.0 || !is_training());
}

// Autocast's bf16 products hand GELU bf16 activations, which its one-pass kernel takes as they
// are (models/kernels/bf16_gelu.h; LibTorch's GELU where the kernel does not run); the tracer
// records LibTorch's GELU.
torch::Tensor MlpImpl::activated(const torch::Tensor& hidden) {
  if (hidden.scalar_type() == torch::kBFloat16 && !torch::jit::tracer::isTracing()) return gelu_of_bf16_values(hidden);
  return act_(hidden);
}

torch::Tensor MlpImpl::forward_bf16_values(const torch::Tensor& x_values) {
  if (fuses_gelu(x_values)) return drop2_(hidden_and_output_in_fp32(x_values).to(torch::kBFloat16));
  // Elsewhere the layers take the values as any fp32 input: autocast's cast of them is exact.
  return forward(x_values);
}

// Where both products run on the fp32 kernels, the hidden activations can stay in fp32 from one to
// the other, GELU rounding them to bf16 where autocast would (models/kernels/bf16_gelu.h). The
// dropout between would need its own pass: with one that drops, the layers run unfused.
bool MlpImpl::fuses_gelu(const torch::Tensor& x) const {
  return linear_input_dtype(x) == torch::kBFloat16 && bf16_products_on_blas(x) &&
         (drop1_->p() == 0.0 || !is_training());
}

torch::Tensor MlpImpl::hidden_and_output_in_fp32(const torch::Tensor& x_values) {
  // The bias rounded to bf16 as product_of_bf16_values rounds it (its gradient too).
  const auto hidden =
      gelu_adds_bias(x_values)
          ? gelu_of_bf16_product_plus_bias(product_of_bf16_values(x_values, fc1_->weight, torch::Tensor()),
                                           bf16_values(fc1_->bias))
          : gelu_of_bf16_values(product_of_bf16_values(x_values, fc1_->weight, fc1_->bias));
  return product_of_bf16_values(hidden, fc2_->weight, fc2_->bias);
}

bool MlpImpl::leaves_rounding(const torch::Tensor& x_values) const {
  return fuses_gelu(x_values) && (drop2_->p() == 0.0 || !is_training());
}

torch::Tensor MlpImpl::forward_leaving_rounding(const torch::Tensor& x_values) {
  TORCH_CHECK(leaves_rounding(x_values),
              "Mlp: forward_leaving_rounding off the fp32 kernels, or with a dropout after it");
  return hidden_and_output_in_fp32(x_values);
}

}  // namespace vit::models
