#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

namespace vit::models {

// Per-channel learnable scale of a residual branch (CaiT), parameter `gamma` as in timm.
class LayerScaleImpl : public torch::nn::Module {
 public:
  LayerScaleImpl(int64_t dim, double init_value);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::Tensor gamma_;
};
TORCH_MODULE(LayerScale);

}  // namespace vit::models
