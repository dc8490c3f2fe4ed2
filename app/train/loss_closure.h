#pragma once

#include <torch/optim/optimizer.h>

namespace vit::app {

// An optimizer step's closure, evaluated first and with gradients on, as LibTorch's step does (it
// may compute the gradients the step takes); undefined without one. For the optimizers whose
// steps run on the batch slices' workers (FusedAdamW, ShardedSgd).
inline torch::Tensor evaluate_loss_closure(const torch::optim::Optimizer::LossClosure& closure) {
  if (closure == nullptr) return {};
  at::AutoGradMode enable_grad(true);
  return closure();
}

}  // namespace vit::app
