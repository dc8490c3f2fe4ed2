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
