#pragma once

#include "models/core/detection_model.h"

#include <torch/types.h>

namespace vit::models {

// DETR's matching cost weights (its defaults): the predicted probability of the object's class,
// the L1 distance of the (cx, cy, w, h) boxes and their generalized IoU.
struct MatchCosts {
  double class_weight = 1.0;
  double bbox_weight = 5.0;
  double giou_weight = 2.0;
};

// Which prediction answers which object: image b's query `query[i]` is matched to the object
// `target[i]` (an index into DetectionTargets' rows); int64 [M] each, on the CPU, image by image.
struct MatchedPairs {
  torch::Tensor image;
  torch::Tensor query;
  torch::Tensor target;
};

// The Hungarian matching of DETR: per image, the one-to-one assignment of queries to its objects
// with the least total cost = class_weight x (-p(class)) + bbox_weight x L1 + giou_weight x (-GIoU).
MatchedPairs hungarian_match(const DetectionModel::Predictions& predictions, const DetectionTargets& targets,
                             const MatchCosts& costs);

}  // namespace vit::models
