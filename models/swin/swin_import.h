#pragma once

// Pretrained Swin weights from timm (>= 0.9, and the original layout of timm < 0.9 and
// microsoft/Swin-Transformer) or torchvision, turned into a vitcpp model: names mapped to timm's,
// the architecture read off the tensors (or checked against a preset), the relative position
// bias tables resampled to another window and the head replaced on request.

#include "models/core/architecture.h"

namespace vit::models {

// `weights` in the request layout's names. Throws WeightsError listing missing, unexpected or
// wrongly shaped tensors by name; std::invalid_argument for a request that contradicts the weights.
ImportedModel import_swin_weights(NamedTensors weights, const ImportRequest& request);

}  // namespace vit::models
