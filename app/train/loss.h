#pragma once

#include "app/config/config.h"

#include <torch/types.h>

namespace vit::app {

// Cross-entropy of fp32 logits against hard labels with label smoothing or, when `soft_targets`
// is defined (mixup/cutmix), against those targets smoothed the same way.
torch::Tensor classification_loss(const torch::Tensor& logits, const torch::Tensor& labels,
                                  const torch::Tensor& soft_targets, double smoothing);

// DeiT's teacher term, on fp32 logits. Soft: KL(softmax(teacher / tau) || softmax(student / tau))
// per image, averaged over the batch and scaled by tau^2 (Hinton et al.; DeiT's paper. DeiT's code
// divides the summed KL by batch x classes instead, which is this divided by the class count).
// Hard: cross-entropy with the teacher's argmax, unsmoothed.
torch::Tensor distillation_loss(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits,
                                DistillationKind kind, double tau);

}  // namespace vit::app
