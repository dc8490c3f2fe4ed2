#include "models/layers/dropout.h"

#include <torch/nn/functional/dropout.h>

#include <utility>

namespace vit::models {

namespace {
thread_local c10::optional<at::Generator> layer_generator;
}  // namespace

LayerRandomness::LayerRandomness(at::Generator generator) : previous_(std::move(layer_generator)) {
  layer_generator = std::move(generator);
}

LayerRandomness::~LayerRandomness() { layer_generator = std::move(previous_); }

c10::optional<at::Generator> LayerRandomness::current() { return layer_generator; }

DropoutImpl::DropoutImpl(double p) : p_(p) {
  TORCH_CHECK(p >= 0.0 && p < 1.0, "Dropout: p must be in [0, 1), got ", p);
}

torch::Tensor DropoutImpl::forward(const torch::Tensor& x) {
  if (!is_training() || p_ == 0.0) return x;
  const auto generator = LayerRandomness::current();
  if (!generator) return torch::dropout(x, p_, true);
  const double keep = 1.0 - p_;
  const auto mask = torch::empty(x.sizes(), x.options().dtype(torch::kFloat32)).bernoulli_(keep, generator);
  return x * mask.div_(keep).to(x.scalar_type());
}

}  // namespace vit::models
