#pragma once

// Pretrained ViT weights from timm, torchvision or DeiT, turned into a vitcpp model: names mapped
// to timm's (vitcpp's own), the architecture read off the tensors (or checked against a preset),
// the positional embedding resampled to a new image size and the head replaced on request.

#include "models/core/architecture.h"

namespace vit::models {

// `weights` in the request layout's names. Throws WeightsError listing missing, unexpected or
// wrongly shaped tensors by name; std::invalid_argument for a request that contradicts the weights.
ImportedModel import_vit_weights(NamedTensors weights, const ImportRequest& request);

// timm's names for the source's tensors (identity for timm and DeiT).
NamedTensors to_timm_names(NamedTensors weights, WeightLayout layout);

// A [1, extra + old_grid^2, D] positional embedding resampled bicubically to new_grid^2 patch
// positions, the first `extra` positions (class and distillation tokens) kept as they are.
torch::Tensor resample_pos_embed(const torch::Tensor& pos_embed, int64_t new_grid, int64_t extra = 1);

}  // namespace vit::models
