// DETR's set loss: its terms on hand-made predictions, and a detector that learns a fixed batch.
#include "app/train/detection_loss.h"
#include "models/core/registry.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace vit::app {
namespace {

models::DetectionTargets one_object(const std::vector<float>& box, int64_t label) {
  return {torch::tensor(box).view({1, 4}), torch::tensor({label}, torch::kInt64), {1}};
}

TEST(DetectionLoss, IsTheWeightedCrossEntropyWhenTheBoxesAreExact) {
  // Two queries, classes {0, 1, no-object}: query 1 finds the object exactly.
  models::DetectionModel::Predictions predictions;
  predictions.logits = torch::tensor({{{0.0f, 0.0f, 2.0f}, {1.0f, 3.0f, 0.0f}}});
  predictions.boxes = torch::tensor({{{0.2f, 0.2f, 0.1f, 0.1f}, {0.6f, 0.5f, 0.2f, 0.3f}}});
  const auto targets = one_object({0.6f, 0.5f, 0.2f, 0.3f}, 1);
  DetectionLossConfig config;
  const auto loss = detection_loss({predictions}, targets, config, 1.0).item<double>();
  // Cross-entropy of query 0 as no-object (weight eos_coef) and query 1 as class 1 (weight 1),
  // their weighted mean; L1 and 1 - GIoU are 0.
  const auto log_p = torch::log_softmax(predictions.logits[0], -1);
  const double ce = -(0.1 * log_p[0][2].item<double>() + log_p[1][1].item<double>()) / 1.1;
  EXPECT_NEAR(loss, ce, 1e-5);

  // A box off by 0.1 in cx adds 5 x 0.1 of L1 and 2 x (1 - GIoU).
  const auto shifted = one_object({0.7f, 0.5f, 0.2f, 0.3f}, 1);
  const auto with_error = detection_loss({predictions}, shifted, config, 1.0).item<double>();
  const double giou = (0.1 * 0.3) / (0.3 * 0.3);  // overlap 0.1 x 0.3, union 0.3 x 0.3, enclosing the union
  EXPECT_NEAR(with_error, ce + 5.0 * 0.1 + 2.0 * (1.0 - giou), 1e-5);
  // Normalized by the number of boxes.
  EXPECT_NEAR(detection_loss({predictions}, shifted, config, 2.0).item<double>(),
              ce + (5.0 * 0.1 + 2.0 * (1.0 - giou)) / 2.0, 1e-5);
  // Auxiliary predictions add their own matched loss.
  EXPECT_NEAR(detection_loss({predictions, predictions}, targets, config, 1.0).item<double>(), 2.0 * ce, 1e-5);
  config.aux_loss = false;
  EXPECT_NEAR(detection_loss({predictions, predictions}, targets, config, 1.0).item<double>(), ce, 1e-5);
}

TEST(DetectionLoss, AnImageWithoutObjectsTeachesNoObject) {
  models::DetectionModel::Predictions predictions;
  predictions.logits = torch::zeros({1, 3, 3}, torch::requires_grad());
  predictions.boxes = torch::full({1, 3, 4}, 0.5f, torch::requires_grad());
  const models::DetectionTargets none{torch::zeros({0, 4}), torch::zeros({0}, torch::kInt64), {0}};
  const auto loss = detection_loss({predictions}, none, DetectionLossConfig{}, 1.0);
  EXPECT_NEAR(loss.item<double>(), std::log(3.0), 1e-5);
  loss.backward();
  EXPECT_LT(predictions.logits.grad()[0][0][2].item<double>(), 0.0);  // raises no-object
}

TEST(DetectionLoss, ADetectorLearnsAFixedBatch) {
  torch::manual_seed(0);
  auto options = models::architecture("detr").preset("detr_shapes_64");
  auto model = models::build_model(options);
  auto* detector = models::detection_model(model);
  const auto images = torch::randn({4, 3, 64, 64});
  const models::DetectionTargets targets{
      torch::tensor(
          {{0.3f, 0.3f, 0.2f, 0.2f}, {0.7f, 0.6f, 0.3f, 0.2f}, {0.5f, 0.5f, 0.4f, 0.4f}, {0.2f, 0.8f, 0.1f, 0.2f}}),
      torch::tensor({0, 1, 2, 3}, torch::kInt64),
      {2, 1, 0, 1}};
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(1e-3).weight_decay(0.0));
  double first = 0.0, last = 0.0;
  for (int step = 0; step < 40; ++step) {
    optimizer.zero_grad();
    const auto loss = detection_loss(detector->detect_per_layer(images), targets, DetectionLossConfig{}, 4.0);
    loss.backward();
    optimizer.step();
    (step == 0 ? first : last) = loss.item<double>();
  }
  EXPECT_LT(last, 0.5 * first) << "first " << first << ", last " << last;
}

}  // namespace
}  // namespace vit::app
