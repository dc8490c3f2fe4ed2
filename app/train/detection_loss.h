#pragma once

#include "app/config/config.h"
#include "models/core/detection_model.h"

#include <torch/types.h>

#include <vector>

namespace vit::app {

// DETR's set loss, summed over `layers` (the final decoder block's predictions, then the earlier
// ones' with train.detection.aux_loss): per layer, the Hungarian matching of queries to objects,
// then the cross-entropy of every query's class (unmatched queries: no object, weighted eos_coef;
// the weighted mean) + bbox_loss_coef x the matched boxes' L1 + giou_loss_coef x their (1 - GIoU),
// both summed and divided by `box_normalizer` (the objects per rank, averaged over the ranks).
torch::Tensor detection_loss(const std::vector<models::DetectionModel::Predictions>& layers,
                             const models::DetectionTargets& targets, const DetectionLossConfig& config,
                             double box_normalizer);

}  // namespace vit::app
