#pragma once

#include "app/train/batch_shards.h"

#include <torch/optim/sgd.h>

#include <vector>

namespace vit::app {

// torch::optim::SGD whose step runs on the batch shards' workers, each a share of every
// parameter's elements: LibTorch's own operators in LibTorch's order (weight decay, momentum,
// Nesterov, the update), so the same bits, state and saved form (checkpoints load in either). With
// batch slices the calling thread runs one OpenMP thread (batch_shards_for): LibTorch's step there
// would make every parameter's passes on one core. Another dtype or device, or a non-contiguous
// tensor, takes LibTorch's step for the whole optimizer.
class ShardedSgd : public torch::optim::SGD {
 public:
  ShardedSgd(std::vector<torch::optim::OptimizerParamGroup> groups, torch::optim::SGDOptions defaults,
             BatchShards shards);
  torch::Tensor step(LossClosure closure = nullptr) override;

 private:
  BatchShards shards_;
};

}  // namespace vit::app
