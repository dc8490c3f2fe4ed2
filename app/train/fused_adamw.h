#pragma once

#include "app/train/batch_shards.h"

#include <torch/optim/adamw.h>

#include <cstdint>
#include <vector>

namespace vit::app {

// torch::optim::AdamW whose step updates each fp32 CPU parameter in one pass over its value,
// gradient and two moments, the passes divided among the batch shards' threads by elements.
// LibTorch's step makes nine passes per parameter (the decay, two for each moment, the square
// root, its scaling, eps, the update), each an operator dispatched and split among the OpenMP
// threads, which for a small model is milliseconds of each step. Same options, state and saved form as
// torch::optim::AdamW (checkpoints load in either), the same formula in the same order; the
// results differ from LibTorch's in the last bit where its kernels fuse a multiply-add, and do not
// depend on the thread count or on whether the CPU has AVX2. Anything else (another dtype or device,
// amsgrad, a non-contiguous tensor) takes LibTorch's step for the whole optimizer.
class FusedAdamW : public torch::optim::AdamW {
 public:
  FusedAdamW(std::vector<torch::optim::OptimizerParamGroup> groups, torch::optim::AdamWOptions defaults,
             BatchShards shards);
  torch::Tensor step(LossClosure closure = nullptr) override;

 private:
  BatchShards shards_;
};

// One parameter's AdamW update, the scalars as LibTorch's step passes them to its fp32 kernels.
struct AdamWElements {
  float* param;
  const float* grad;
  float* exp_avg;
  float* exp_avg_sq;
  float decay;  // 1 - lr * weight_decay
  float beta1;
  float one_minus_beta1;
  float beta2;
  float one_minus_beta2;
  float bias_correction2_sqrt;  // sqrt(1 - beta2^step)
  float eps;
  float neg_step_size;  // -lr / (1 - beta1^step)
};

// Where the CPU has AVX2 the elements go 8 at a time; `portable` forces the scalar loop (its tests
// compare the two bit for bit).
void update_adamw_elements(const AdamWElements& elements, int64_t begin, int64_t end, bool portable = false);

}  // namespace vit::app
