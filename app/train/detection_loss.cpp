#include "app/train/detection_loss.h"

#include "models/detection/box_ops.h"
#include "models/detection/hungarian_matcher.h"

#include <torch/nn/functional/loss.h>

#include <algorithm>

namespace vit::app {
namespace {

torch::Tensor layer_loss(const models::DetectionModel::Predictions& predictions,
                         const models::DetectionTargets& targets, const DetectionLossConfig& config,
                         const DetectionLossNormalizers& normalizers) {
  const auto& logits = predictions.logits;
  const int64_t no_object = logits.size(-1) - 1;
  const auto device = logits.device();
  const auto pairs = models::hungarian_match(predictions, targets,
                                             models::MatchCosts{config.cost_class, config.cost_bbox, config.cost_giou});
  const auto image = pairs.image.to(device);
  const auto query = pairs.query.to(device);
  const auto target = pairs.target.to(device);

  auto classes =
      torch::full({logits.size(0), logits.size(1)}, no_object, torch::TensorOptions(device).dtype(torch::kInt64));
  classes.index_put_({image, query}, targets.labels.to(device).index_select(0, target));
  auto class_weights = torch::ones({no_object + 1}, logits.options());
  class_weights[no_object] = config.eos_coef;
  auto loss = torch::nn::functional::cross_entropy(
                  logits.flatten(0, 1), classes.flatten(),
                  torch::nn::functional::CrossEntropyFuncOptions().weight(class_weights).reduction(torch::kSum)) /
              normalizers.class_weights;
  if (target.numel() == 0) return loss + 0.0 * predictions.boxes.sum();  // keeps the box head in the graph
  const auto matched = predictions.boxes.index({image, query});
  const auto wanted = targets.boxes.to(device, torch::kFloat32).index_select(0, target);
  const auto l1 = (matched - wanted).abs().sum() / normalizers.boxes;
  const auto giou =
      (1.0 -
       models::generalized_box_iou(models::box_cxcywh_to_xyxy(matched), models::box_cxcywh_to_xyxy(wanted)).diagonal())
          .sum() /
      normalizers.boxes;
  return loss + config.bbox_loss_coef * l1 + config.giou_loss_coef * giou;
}

}  // namespace

double class_weight_sum(const models::DetectionTargets& objects, int64_t queries, double eos_coef) {
  double sum = 0.0;
  for (const int64_t count : objects.counts) {
    const auto matched = static_cast<double>(std::min(count, queries));
    sum += matched + (static_cast<double>(queries) - matched) * eos_coef;
  }
  // Every weight 0 (eos_coef 0 and no objects): the weighted sum is 0, and so is the loss, not 0 / 0.
  return sum > 0.0 ? sum : 1.0;
}

torch::Tensor detection_loss(const std::vector<models::DetectionModel::Predictions>& layers,
                             const models::DetectionTargets& targets, const DetectionLossConfig& config,
                             const DetectionLossNormalizers& normalizers) {
  auto loss = layer_loss(layers.front(), targets, config, normalizers);
  if (config.aux_loss) {
    for (size_t i = 1; i < layers.size(); ++i) loss = loss + layer_loss(layers[i], targets, config, normalizers);
  }
  return loss;
}

}  // namespace vit::app
