#include "app/train/loss.h"

#include <torch/nn/functional/loss.h>

namespace vit::app {

torch::Tensor classification_loss(const torch::Tensor& logits, const torch::Tensor& labels,
                                  const torch::Tensor& soft_targets, double smoothing) {
  if (!soft_targets.defined()) {
    return torch::nn::functional::cross_entropy(
        logits, labels, torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(smoothing));
  }
  auto targets = soft_targets.to(logits.device());
  if (smoothing > 0.0) targets = targets * (1.0 - smoothing) + smoothing / static_cast<double>(logits.size(1));
  return -(targets * torch::log_softmax(logits, 1)).sum(1).mean();
}

torch::Tensor distillation_loss(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits,
                                DistillationKind kind, double tau) {
  if (kind == DistillationKind::Hard) {
    return torch::nn::functional::cross_entropy(student_logits, teacher_logits.argmax(1));
  }
  const auto student = torch::log_softmax(student_logits / tau, 1);
  const auto teacher = torch::log_softmax(teacher_logits / tau, 1);
  return (teacher.exp() * (teacher - student)).sum(1).mean() * (tau * tau);
}

}  // namespace vit::app
