#include "app/train/loss.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace vit::app {
namespace {

// The paper's soft term written out per element in double precision:
// tau^2 / B * sum_b sum_c p_t(c) (log p_t(c) - log p_s(c)), both softmaxes at temperature tau.
double soft_term(const torch::Tensor& student, const torch::Tensor& teacher, double tau) {
  const auto s = student.to(torch::kFloat64);
  const auto t = teacher.to(torch::kFloat64);
  double total = 0.0;
  for (int64_t b = 0; b < s.size(0); ++b) {
    double student_norm = 0.0;
    double teacher_norm = 0.0;
    for (int64_t c = 0; c < s.size(1); ++c) {
      student_norm += std::exp(s[b][c].item<double>() / tau);
      teacher_norm += std::exp(t[b][c].item<double>() / tau);
    }
    for (int64_t c = 0; c < s.size(1); ++c) {
      const double log_p_teacher = t[b][c].item<double>() / tau - std::log(teacher_norm);
      const double log_p_student = s[b][c].item<double>() / tau - std::log(student_norm);
      total += std::exp(log_p_teacher) * (log_p_teacher - log_p_student);
    }
  }
  return tau * tau * total / static_cast<double>(s.size(0));
}

TEST(DistillationLoss, SoftIsTheKlDivergenceAtTheTemperatureScaledByItsSquare) {
  torch::manual_seed(0);
  const auto student = torch::randn({6, 10}) * 3.0;
  const auto teacher = torch::randn({6, 10}) * 3.0;
  for (const double tau : {1.0, 2.0, 4.0}) {
    const double loss = distillation_loss(student, teacher, DistillationKind::Soft, tau).item<double>();
    EXPECT_NEAR(loss, soft_term(student, teacher, tau), 1e-5) << "tau " << tau;
    // LibTorch's own KL divergence agrees.
    const auto reference = torch::nn::functional::kl_div(
        torch::log_softmax(student / tau, 1), torch::log_softmax(teacher / tau, 1),
        torch::nn::functional::KLDivFuncOptions().reduction(torch::kBatchMean).log_target(true));
    EXPECT_NEAR(loss, reference.item<double>() * tau * tau, 1e-5);
  }
  EXPECT_NEAR(distillation_loss(teacher, teacher, DistillationKind::Soft, 2.0).item<double>(), 0.0, 1e-6);
}

TEST(DistillationLoss, HardIsCrossEntropyWithTheTeachersArgmaxAndItsGradientReachesTheStudentOnly) {
  const auto student = torch::tensor({{2.0, 0.5, -1.0}, {0.0, 0.0, 3.0}}).requires_grad_();
  const auto teacher = torch::tensor({{0.1, 0.9, 0.0}, {5.0, 1.0, 2.0}}).requires_grad_();
  const auto loss = distillation_loss(student, teacher, DistillationKind::Hard, 1.0);
  const auto log_p = torch::log_softmax(student.detach(), 1);
  const double expected = -(log_p[0][1].item<double>() + log_p[1][0].item<double>()) / 2.0;
  EXPECT_NEAR(loss.item<double>(), expected, 1e-6);
  loss.backward();
  EXPECT_TRUE(student.grad().defined());
  EXPECT_FALSE(teacher.grad().defined());
}

TEST(ClassificationLoss, SoftTargetsAreSmoothedLikeHardLabels) {
  const auto logits = torch::tensor({{1.0, 2.0, 0.5}});
  const auto labels = torch::tensor({1}, torch::kLong);
  const auto one_hot = torch::tensor({{0.0, 1.0, 0.0}});
  EXPECT_NEAR(classification_loss(logits, labels, {}, 0.1).item<double>(),
              classification_loss(logits, labels, one_hot, 0.1).item<double>(), 1e-6);
}

}  // namespace
}  // namespace vit::app
