#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

namespace vit::models {

// Stochastic depth: in training, zeroes a whole residual branch per sample with probability
// drop_prob and scales the kept ones by 1/(1-drop_prob); the identity in eval mode.
class DropPathImpl : public torch::nn::Module {
 public:
  explicit DropPathImpl(double drop_prob = 0.0);
  torch::Tensor forward(const torch::Tensor& x);
  // What forward multiplies a branch like x of `dtype` by, drawn as forward draws it: in training
  // with a non-zero drop_prob, each sample's factor (0, or 1/(1-drop_prob) in `dtype`) shaped
  // [B, 1, ...] to broadcast over x; elsewhere undefined (x stays as it is). For a caller that
  // applies the factors in a pass of its own (residual_layer_norm's branch_factors), where x is
  // not yet in the dtype the branch would have.
  torch::Tensor sample_factors(const torch::Tensor& x, c10::ScalarType dtype);
  double drop_prob() const { return drop_prob_; }

 private:
  double drop_prob_;
};
TORCH_MODULE(DropPath);

// Whether `module` or one of its submodules draws random numbers in a training forward: a
// dropout or a stochastic depth with a non-zero probability.
bool draws_random_numbers(const torch::nn::Module& module);

// Stochastic depth rising linearly from 0 at the first of `blocks` blocks to `rate` at the last
// (timm's schedule); a single block gets `rate`.
double drop_path_at(double rate, int64_t block, int64_t blocks);

}  // namespace vit::models
