#pragma once

#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

namespace vit::models {

// torch::linear, whose bf16 products go where bf16_products() says (models/kernels/bf16_products.h).
torch::Tensor linear(const torch::Tensor& input, const torch::Tensor& weight, const torch::Tensor& bias);

// Where bf16 products run on the fp32 kernels (bf16_products_on_blas): the product, outside autocast, of `input_values`
// (fp32 holding bf16 values, taken as they are) with the weight and bias rounded to bf16, in fp32 and unrounded;
// linear() above rounds it to bf16. For layers that fuse what lies between two products (Mlp).
torch::Tensor product_of_bf16_values(const torch::Tensor& input_values, const torch::Tensor& weight,
                                     const torch::Tensor& bias);

// torch::nn::Linear (same parameters, names and initialization) whose forward is linear() above:
// the torch::linear operator, the one Python's nn.Linear calls.
//
// LibTorch 1.13's C++ Linear multiplies and then adds its bias in place, outside autocast: under
// bf16 autocast the product is bf16 while the bias stays fp32, so the in-place add goes through an
// fp32 copy of the whole output, forward and backward (12 % of a ViT-Ti-sized layer's forward and
// backward on one thread). torch::linear is an autocast operator and casts the bias with the weight.
// Inputs of more than three dimensions are multiplied flattened to [rows, in_features], so that the
// bias goes into the product there too.
class LinearImpl : public torch::nn::LinearImpl {
 public:
  using torch::nn::LinearImpl::LinearImpl;
  torch::Tensor forward(const torch::Tensor& input);
};
TORCH_MODULE(Linear);

}  // namespace vit::models
