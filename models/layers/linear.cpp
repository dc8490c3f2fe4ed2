#include "models/layers/linear.h"

#include "models/kernels/amx_linear.h"
#include "models/kernels/autocast_state.h"
#include "models/kernels/bf16_products.h"

#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/csrc/jit/frontend/tracer.h>

namespace vit::models {
namespace {

torch::Tensor product_of_rows(const torch::Tensor& input, const torch::Tensor& weight, const torch::Tensor& bias) {
  // LibTorch 1.13's linear puts the bias into the product only for 2- and 3-dimensional inputs;
  // with more (Swin's MLP and patch merging read [B, H, W, C]) it adds the bias in a second pass
  // over the output, in bf16 a second rounding. Not while tracing: the tracer would record the
  // view's sizes as constants, fixing an export's batch size.
  if (input.dim() <= 3 || torch::jit::tracer::isTracing()) return torch::linear(input, weight, bias);
  auto sizes = input.sizes().vec();
  sizes.back() = weight.size(0);
  return torch::linear(input.flatten(0, -2), weight, bias).view(sizes);
}

}  // namespace

torch::Tensor product_of_bf16_values(const torch::Tensor& input_values, const torch::Tensor& weight,
                                     const torch::Tensor& bias) {
  // Autocast would send the fp32 product back to bf16.
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  return product_of_rows(input_values, bf16_values(weight), bf16_values(bias));
}

torch::Tensor linear(const torch::Tensor& input, const torch::Tensor& weight, const torch::Tensor& bias) {
  const bool in_bf16 = linear_input_dtype(input) == torch::kBFloat16;
  if (in_bf16 && bf16_products_on_blas(input)) {
    return product_of_bf16_values(bf16_values(input), weight, bias).to(torch::kBFloat16);
  }
  // Not while tracing: an export records LibTorch's operators.
  if (in_bf16 && !torch::jit::tracer::isTracing() && amx_linear_applies(input, weight)) {
    return amx_linear(input, weight, bias);
  }
  return product_of_rows(input, weight, bias);
}

torch::Tensor LinearImpl::forward(const torch::Tensor& input) { return linear(input, weight, bias); }

}  // namespace vit::models
