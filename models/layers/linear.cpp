#include "models/layers/linear.h"

#include <torch/csrc/jit/frontend/tracer.h>

namespace vit::models {

torch::Tensor LinearImpl::forward(const torch::Tensor& input) {
  // The tracer would record the output's sizes below as constants, fixing an export's batch size.
  if (input.dim() <= 3 || torch::jit::tracer::isTracing()) return torch::linear(input, weight, bias);
  // LibTorch 1.13's linear puts the bias into the product only for 2- and 3-dimensional inputs;
  // with more dimensions it adds the bias in a second pass over the output (in bf16, a second
  // rounding). Swin's MLP and patch merging read [B, H, W, C].
  auto sizes = input.sizes().vec();
  sizes.back() = weight.size(0);
  return torch::linear(input.flatten(0, -2), weight, bias).view(sizes);
}

}  // namespace vit::models
