#include "models/layers/linear.h"

#include <torch/csrc/jit/frontend/tracer.h>

namespace vit::models {

torch::Tensor LinearImpl::forward(const torch::Tensor& input) {
  // LibTorch 1.13's linear puts the bias into the product only for 2- and 3-dimensional inputs;
  // with more (Swin's MLP and patch merging read [B, H, W, C]) it adds the bias in a second pass
  // over the output, in bf16 a second rounding. Not while tracing: the tracer would record the
  // view's sizes as constants, fixing an export's batch size.
  if (input.dim() <= 3 || torch::jit::tracer::isTracing()) return torch::linear(input, weight, bias);
  auto sizes = input.sizes().vec();
  sizes.back() = weight.size(0);
  return torch::linear(input.flatten(0, -2), weight, bias).view(sizes);
}

}  // namespace vit::models
