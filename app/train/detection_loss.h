#pragma once

#include "app/config/config.h"
#include "models/core/detection_model.h"

#include <torch/types.h>

#include <vector>

namespace vit::app {

// What a detection loss divides its sums by: figures of a whole micro-batch. A slice of the
// micro-batch (BatchShards) divides by its micro-batch's, so that the slices' losses add up to the
// micro-batch's loss.
struct DetectionLossNormalizers {
  double boxes;          // the L1 and GIoU sums': the objects per rank, averaged over the ranks (DETR's num_boxes)
  double class_weights;  // the cross-entropy's: every query's class weight, summed (1 if matched, else eos_coef)
};

// The class weights' sum of a micro-batch with these objects and `queries` predictions per image:
// the Hungarian matching pairs min(objects, queries) of an image's queries with an object. 1 where
// every weight is 0.
double class_weight_sum(const models::DetectionTargets& objects, int64_t queries, double eos_coef);

// DETR's set loss, summed over `layers` (the final decoder block's predictions, then the earlier
// ones' with train.detection.aux_loss): per layer, the Hungarian matching of queries to objects,
// then the cross-entropy of every query's class (unmatched queries: no object, weighted eos_coef),
// summed with those weights and divided by `normalizers.class_weights` (for a whole micro-batch: the
// weighted mean) + bbox_loss_coef x the matched boxes' L1 + giou_loss_coef x their (1 - GIoU), both
// summed and divided by `normalizers.boxes`.
torch::Tensor detection_loss(const std::vector<models::DetectionModel::Predictions>& layers,
                             const models::DetectionTargets& targets, const DetectionLossConfig& config,
                             const DetectionLossNormalizers& normalizers);

}  // namespace vit::app
