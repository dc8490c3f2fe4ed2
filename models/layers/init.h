#pragma once

#include <torch/types.h>

namespace vit::models {

// In-place normal(0, std) truncated to [-2 std, 2 std] by inverse-CDF sampling, like
// torch.nn.init.trunc_normal_ (which LibTorch's C++ API lacks).
void trunc_normal_(torch::Tensor tensor, double std);

}  // namespace vit::models
