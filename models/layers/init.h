#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

namespace vit::models {

// The standard deviation of timm's truncated-normal init (weights, position tables, tokens).
inline constexpr double kInitStd = 0.02;

// In-place normal(0, std) truncated to [-2 std, 2 std] by inverse-CDF sampling, like
// torch.nn.init.trunc_normal_ (which LibTorch's C++ API lacks).
void trunc_normal_(torch::Tensor tensor, double std);

// timm's Linear init for every Linear below `model`: truncated normal(0, std) weights, zero biases.
void init_linear_layers(torch::nn::Module& model, double std);

}  // namespace vit::models
