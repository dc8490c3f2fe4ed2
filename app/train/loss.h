#pragma once

#include <torch/types.h>

namespace vit::app {

// Cross-entropy of fp32 logits against hard labels with label smoothing or, when `soft_targets`
// is defined (mixup/cutmix), against those targets smoothed the same way.
torch::Tensor classification_loss(const torch::Tensor& logits, const torch::Tensor& labels,
                                  const torch::Tensor& soft_targets, double smoothing);

}  // namespace vit::app
