#pragma once

#include "models/layers/dropout.h"
#include "models/layers/linear.h"

#include <torch/nn/module.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/pimpl.h>

namespace vit::models {

struct MlpOptions {
  int64_t in_features;
  int64_t hidden_features;
  double drop = 0.0;
};

// The Transformer's position-wise feed-forward: Linear -> GELU -> Dropout -> Linear -> Dropout.
class MlpImpl : public torch::nn::Module {
 public:
  explicit MlpImpl(const MlpOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  // The same on x held as bf16 values in fp32 (a LayerNorm's rows rounded for the next product),
  // under bf16 autocast with products on the fp32 kernels: fc1's product reads x as it is.
  torch::Tensor forward_bf16_values(const torch::Tensor& x_values);
  // Where leaves_rounding(x_values): forward_bf16_values' output before its cast to bf16, fc2's fp32
  // product, for the caller to round in a pass of its own (residual_layer_norm's branch_bf16_values).
  torch::Tensor forward_leaving_rounding(const torch::Tensor& x_values);
  // Both layers run between bf16 values on the fp32 kernels, and no dropout follows fc2 in training.
  bool leaves_rounding(const torch::Tensor& x_values) const;
  // Where leaves_bias(): forward's output without fc2's bias, and that bias, for the caller to add
  // in a pass of its own (residual_layer_norm's branch_bias).
  std::pair<torch::Tensor, torch::Tensor> forward_leaving_bias(const torch::Tensor& x);
  // fc2 has a bias, and no dropout follows it in training.
  bool leaves_bias() const;

 private:
  // fc2's input: fc1, GELU and dropout, fused where the kernels apply (not on the fp32 kernels'
  // bf16 products, where forward fuses both layers).
  torch::Tensor hidden(const torch::Tensor& x);
  torch::Tensor activated(const torch::Tensor& hidden);
  bool fuses_gelu(const torch::Tensor& x) const;
  bool fc1_writes_gelu(const torch::Tensor& x) const;
  bool gelu_adds_bias(const torch::Tensor& x) const;
  bool runs_on_tiles(const torch::Tensor& x) const;
  // Both layers on the fp32 kernels, the hidden activations in fp32 between them: fc2's fp32
  // product, which autocast would round to bf16.
  torch::Tensor hidden_and_output_in_fp32(const torch::Tensor& x_values);

  Linear fc1_{nullptr};
  torch::nn::GELU act_{nullptr};
  Dropout drop1_{nullptr};
  Linear fc2_{nullptr};
  Dropout drop2_{nullptr};
};
TORCH_MODULE(Mlp);

}  // namespace vit::models
