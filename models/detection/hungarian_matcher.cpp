#include "models/detection/hungarian_matcher.h"

#include "models/detection/box_ops.h"
#include "models/detection/linear_assignment.h"

#include <ATen/ATen.h>

namespace vit::models {

MatchedPairs hungarian_match(const DetectionModel::Predictions& predictions, const DetectionTargets& targets,
                             const MatchCosts& costs) {
  torch::NoGradGuard no_grad;
  const int64_t batch = predictions.logits.size(0);
  const int64_t queries = predictions.logits.size(1);
  TORCH_CHECK(static_cast<int64_t>(targets.counts.size()) == batch, "hungarian_match: ", targets.counts.size(),
              " images of targets for a batch of ", batch);
  std::vector<int64_t> images, query_index, target_index;
  if (targets.labels.numel() > 0) {
    // All images' queries against all objects at once, as DETR does, then one block per image.
    const auto probabilities = predictions.logits.flatten(0, 1).to(torch::kFloat32).softmax(-1);
    const auto boxes = predictions.boxes.flatten(0, 1).to(torch::kFloat32);
    const auto target_boxes = targets.boxes.to(boxes.device(), torch::kFloat32);
    const auto cost =
        costs.bbox_weight * at::cdist(boxes, target_boxes, 1.0) -
        costs.class_weight * probabilities.index_select(1, targets.labels.to(boxes.device())) -
        costs.giou_weight * generalized_box_iou(box_cxcywh_to_xyxy(boxes), box_cxcywh_to_xyxy(target_boxes));
    const auto cpu_cost = cost.view({batch, queries, -1}).to(torch::kCPU, torch::kFloat64).contiguous();
    int64_t first = 0;
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t count = targets.counts[static_cast<size_t>(b)];
      if (count > 0) {
        const auto block = cpu_cost[b].narrow(1, first, count).contiguous();
        const auto* data = block.data_ptr<double>();
        const auto assignment = linear_sum_assignment(std::vector<double>(data, data + block.numel()), queries, count);
        for (size_t i = 0; i < assignment.rows.size(); ++i) {
          images.push_back(b);
          query_index.push_back(assignment.rows[i]);
          target_index.push_back(first + assignment.cols[i]);
        }
      }
      first += count;
    }
  }
  const auto as_tensor = [](const std::vector<int64_t>& values) {
    return torch::tensor(values, torch::kInt64).reshape({static_cast<int64_t>(values.size())});
  };
  return {as_tensor(images), as_tensor(query_index), as_tensor(target_index)};
}

}  // namespace vit::models
