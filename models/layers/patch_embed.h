#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

namespace vit::models {

struct PatchEmbedOptions {
  int64_t image_size;
  int64_t patch_size;
  int64_t in_chans;
  int64_t embed_dim;
  bool norm = false;  // a LayerNorm over each patch's embedding (Swin's; timm's norm_layer)
};

// Splits an image into non-overlapping patches and projects each to embed_dim:
// [B, C, H, W] -> [B, (H/P)*(W/P), D].
class PatchEmbedImpl : public torch::nn::Module {
 public:
  explicit PatchEmbedImpl(const PatchEmbedOptions& options);
  torch::Tensor forward(const torch::Tensor& images);

 private:
  // [B, C, H, W] -> [B, (H/P)*(W/P), D] without the norm.
  torch::Tensor project(const torch::Tensor& images);

  PatchEmbedOptions options_;
  torch::nn::Conv2d proj_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
};
TORCH_MODULE(PatchEmbed);

}  // namespace vit::models
