#include "models/layers/linear.h"

namespace vit::models {

torch::Tensor LinearImpl::forward(const torch::Tensor& input) { return torch::linear(input, weight, bias); }

}  // namespace vit::models
