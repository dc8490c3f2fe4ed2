#include "models/inspect/complexity.h"

#include <torch/nn/modules/container/modulelist.h>

namespace vit::models {
namespace {

int64_t count_elements(const std::vector<torch::Tensor>& tensors) {
  int64_t total = 0;
  for (const auto& tensor : tensors) total += tensor.numel();
  return total;
}

}  // namespace

ModelComplexity measure_complexity(const ImageModelImpl& model) {
  ModelComplexity result;
  result.tokens = model.tokens();
  result.activation_bytes = model.activation_bytes();
  result.parameters = count_elements(model.parameters());
  for (const auto& item : model.named_parameters(/*recurse=*/false)) {
    result.modules.push_back({item.key(), item.value().numel(), 0, 0});
  }
  // A list of layers ("blocks") is costed layer by layer.
  for (const auto& item : model.named_children()) {
    if (item.value()->as<torch::nn::ModuleList>() != nullptr) {
      for (const auto& layer : item.value()->named_children()) {
        const auto name = item.key() + "." + layer.key();
        result.modules.push_back(
            {name, count_elements(layer.value()->parameters()), model.macs(name), model.executed_macs(name)});
      }
    } else if (const auto parameters = count_elements(item.value()->parameters()); parameters > 0) {
      result.modules.push_back({item.key(), parameters, model.macs(item.key()), model.executed_macs(item.key())});
    }
  }
  for (const auto& module : result.modules) {
    result.macs += module.macs;
    result.executed_macs += module.executed_macs;
  }
  return result;
}

}  // namespace vit::models
