#pragma once

// Pretrained ViT weights from timm, torchvision or DeiT, turned into a vitcpp model: names mapped
// to timm's (vitcpp's own), the architecture read off the tensors (or checked against a preset),
// the positional embedding resampled to a new image size and the head replaced on request.

#include "app/weight_files.h"
#include "models/vision_transformer.h"

#include <optional>
#include <string>
#include <vector>

namespace vit::app {

enum class WeightLayout { Timm, Torchvision, Deit };

struct ImportOptions {
  WeightLayout layout = WeightLayout::Timm;
  std::string preset;                  // empty: the architecture comes from the tensors' shapes
  std::optional<int64_t> num_heads;    // without a preset: default embed_dim / 64, as in every released ViT
  std::optional<int64_t> image_size;   // resample the patch-grid positional embedding to this size
  std::optional<int64_t> num_classes;  // a fresh head with this many outputs (0: no head)
};

struct ImportedModel {
  models::VitOptions options;
  models::VisionTransformer model{nullptr};
  std::vector<std::string> notes;  // what was changed on the way (resampled, new head), for the log
};

// `weights` in the source's names. Throws data::DataError listing missing, unexpected or
// wrongly shaped tensors by name; ConfigError for options that contradict the weights.
ImportedModel import_weights(NamedTensors weights, const ImportOptions& options);

// timm's names for the source's tensors (identity for timm and DeiT).
NamedTensors to_timm_names(NamedTensors weights, WeightLayout layout);

// A [1, extra + old_grid^2, D] positional embedding resampled bicubically to new_grid^2 patch
// positions, the first `extra` (class-token) positions kept as they are.
torch::Tensor resample_pos_embed(const torch::Tensor& pos_embed, int64_t new_grid, int64_t extra = 1);

}  // namespace vit::app
