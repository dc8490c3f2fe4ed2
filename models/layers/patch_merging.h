#pragma once

#include "models/layers/linear.h"

#include <torch/nn/module.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

namespace vit::models {

// Swin's downsampling between stages: each 2x2 neighbourhood of a channels-last map concatenated
// (the order of timm and torchvision: (0,0), (1,0), (0,1), (1,1) as (row, column)), normalized
// and projected to twice the channels: [B, H, W, C] -> [B, H/2, W/2, 2C]. H and W must be even.
class PatchMergingImpl : public torch::nn::Module {
 public:
  explicit PatchMergingImpl(int64_t dim);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::LayerNorm norm_{nullptr};
  Linear reduction_{nullptr};
};
TORCH_MODULE(PatchMerging);

}  // namespace vit::models
