// DETR's set loss: its terms on hand-made predictions, and a detector that learns a fixed batch.
#include "app/train/detection_loss.h"
#include "models/core/registry.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <cmath>

namespace vit::app {
namespace {

// The normalizers of a whole batch: its objects' boxes counted as `boxes`.
DetectionLossNormalizers whole_batch(const models::DetectionTargets& targets, int64_t queries, double boxes,
                                     const DetectionLossConfig& config = {}) {
  return {boxes, class_weight_sum(targets, queries, config.eos_coef)};
}

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
  const auto loss = detection_loss({predictions}, targets, config, whole_batch(targets, 2, 1.0)).item<double>();
  // Cross-entropy of query 0 as no-object (weight eos_coef) and query 1 as class 1 (weight 1),
  // their weighted mean; L1 and 1 - GIoU are 0.
  const auto log_p = torch::log_softmax(predictions.logits[0], -1);
  const double ce = -(0.1 * log_p[0][2].item<double>() + log_p[1][1].item<double>()) / 1.1;
  EXPECT_NEAR(loss, ce, 1e-5);

  // A box off by 0.1 in cx adds 5 x 0.1 of L1 and 2 x (1 - GIoU).
  const auto shifted = one_object({0.7f, 0.5f, 0.2f, 0.3f}, 1);
  const auto with_error = detection_loss({predictions}, shifted, config, whole_batch(shifted, 2, 1.0)).item<double>();
  const double giou = (0.1 * 0.3) / (0.3 * 0.3);  // overlap 0.1 x 0.3, union 0.3 x 0.3, enclosing the union
  EXPECT_NEAR(with_error, ce + 5.0 * 0.1 + 2.0 * (1.0 - giou), 1e-5);
  // Normalized by the number of boxes.
  EXPECT_NEAR(detection_loss({predictions}, shifted, config, whole_batch(shifted, 2, 2.0)).item<double>(),
              ce + (5.0 * 0.1 + 2.0 * (1.0 - giou)) / 2.0, 1e-5);
  // Auxiliary predictions add their own matched loss.
  EXPECT_NEAR(detection_loss({predictions, predictions}, targets, config, whole_batch(targets, 2, 1.0)).item<double>(),
              2.0 * ce, 1e-5);
  config.aux_loss = false;
  EXPECT_NEAR(detection_loss({predictions, predictions}, targets, config, whole_batch(targets, 2, 1.0)).item<double>(),
              ce, 1e-5);
}

models::DetectionModel::Predictions images_of(const models::DetectionModel::Predictions& predictions, int64_t begin,
                                              int64_t end) {
  return {predictions.logits.slice(0, begin, end), predictions.boxes.slice(0, begin, end)};
}

TEST(DetectionLoss, SlicesOverTheWholeBatchsNormalizersAddUpToItsLoss) {
  // Three images of four queries with 2, 0 and 1 objects, cut into images {0} and {1, 2}.
  torch::manual_seed(0);
  const models::DetectionModel::Predictions predictions{torch::randn({3, 4, 3}), torch::rand({3, 4, 4}) * 0.5 + 0.25};
  const models::DetectionTargets targets{
      torch::tensor({{0.3f, 0.3f, 0.2f, 0.2f}, {0.7f, 0.6f, 0.3f, 0.2f}, {0.5f, 0.5f, 0.4f, 0.4f}}),
      torch::tensor({0, 1, 1}, torch::kInt64),
      {2, 0, 1}};
  const DetectionLossConfig config;
  const auto normalizers = whole_batch(targets, 4, 3.0);
  // Matched queries weigh 1, the others eos_coef: (2 + 2 x 0.1) + 4 x 0.1 + (1 + 3 x 0.1).
  EXPECT_NEAR(normalizers.class_weights, 3.9, 1e-12);
  const double whole = detection_loss({predictions}, targets, config, normalizers).item<double>();
  const models::DetectionTargets first{targets.boxes.narrow(0, 0, 2), targets.labels.narrow(0, 0, 2), {2}};
  const models::DetectionTargets rest{targets.boxes.narrow(0, 2, 1), targets.labels.narrow(0, 2, 1), {0, 1}};
  const double parts = detection_loss({images_of(predictions, 0, 1)}, first, config, normalizers).item<double>() +
                       detection_loss({images_of(predictions, 1, 3)}, rest, config, normalizers).item<double>();
  EXPECT_NEAR(parts, whole, 1e-6 * whole);
  // A slice's own normalizers would give another loss.
  const double own =
      detection_loss({images_of(predictions, 0, 1)}, first, config, whole_batch(first, 4, 2.0)).item<double>() +
      detection_loss({images_of(predictions, 1, 3)}, rest, config, whole_batch(rest, 4, 1.0)).item<double>();
  EXPECT_GT(std::abs(own - whole), 0.1);

  // More objects than queries: every query is matched. No weight at all: 1, not 0.
  const models::DetectionTargets crowded{torch::rand({5, 4}), torch::zeros({5}, torch::kInt64), {5}};
  EXPECT_EQ(class_weight_sum(crowded, 4, 0.1), 4.0);
  const models::DetectionTargets none{torch::zeros({0, 4}), torch::zeros({0}, torch::kInt64), {0}};
  EXPECT_EQ(class_weight_sum(none, 4, 0.0), 1.0);
}

TEST(DetectionLoss, AnImageWithoutObjectsTeachesNoObject) {
  models::DetectionModel::Predictions predictions;
  predictions.logits = torch::zeros({1, 3, 3}, torch::requires_grad());
  predictions.boxes = torch::full({1, 3, 4}, 0.5f, torch::requires_grad());
  const models::DetectionTargets none{torch::zeros({0, 4}), torch::zeros({0}, torch::kInt64), {0}};
  const auto loss = detection_loss({predictions}, none, DetectionLossConfig{}, whole_batch(none, 3, 1.0));
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
    const auto loss = detection_loss(detector->detect_per_layer(images), targets, DetectionLossConfig{},
                                     whole_batch(targets, detector->num_queries(), 4.0));
    loss.backward();
    optimizer.step();
    (step == 0 ? first : last) = loss.item<double>();
  }
  EXPECT_LT(last, 0.5 * first) << "first " << first << ", last " << last;
}

}  // namespace
}  // namespace vit::app
