#pragma once

#include <torch/types.h>

#include <map>
#include <string>

namespace vit::models {

// A state_dict: tensors by their (timm-style) names.
using NamedTensors = std::map<std::string, torch::Tensor>;

}  // namespace vit::models
