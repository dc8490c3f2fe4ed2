#include "models/core/image_model.h"

#include <stdexcept>

namespace vit::models {

ImageModelImpl::TrainingOutputs ImageModelImpl::forward_train(const torch::Tensor& images) {
  auto logits = forward(images);
  return {logits, logits};
}

bool ImageModelImpl::decays(const std::string& /*name*/, const torch::Tensor& parameter) const {
  return parameter.dim() > 1;
}

bool ImageModelImpl::in_head(const std::string& name) const { return name.rfind("head.", 0) == 0; }

std::vector<torch::Tensor> ImageModelImpl::attention_maps(const torch::Tensor& /*images*/) {
  throw std::invalid_argument("model.arch " + model_options().arch() + " has no class-token attention to show");
}

}  // namespace vit::models
