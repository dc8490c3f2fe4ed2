#pragma once

#include <ATen/core/Generator.h>
#include <c10/util/Optional.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

namespace vit::models {

// The generator that this thread's stochastic layers (Dropout, DropPath) draw from while the
// guard lives. Slices of one batch that run at once each get their own, so that what they draw
// does not depend on which of them reaches the shared default generator first. Without a guard
// the layers draw from the default generator, as torch's dropout does.
class LayerRandomness {
 public:
  explicit LayerRandomness(at::Generator generator);
  ~LayerRandomness();
  LayerRandomness(const LayerRandomness&) = delete;
  LayerRandomness& operator=(const LayerRandomness&) = delete;
  // The innermost guard's generator on this thread, or none.
  static c10::optional<at::Generator> current();

 private:
  c10::optional<at::Generator> previous_;
};

// torch::nn::Dropout that honours LayerRandomness: in training, zeroes each element with
// probability p and scales the rest by 1/(1-p); the identity in eval mode.
class DropoutImpl : public torch::nn::Module {
 public:
  explicit DropoutImpl(double p = 0.5);
  torch::Tensor forward(const torch::Tensor& x);
  double p() const { return p_; }

 private:
  double p_;
};
TORCH_MODULE(Dropout);

}  // namespace vit::models
