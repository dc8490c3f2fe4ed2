#include "models/detection/box_ops.h"

#include <ATen/ATen.h>

namespace vit::models {
namespace {

torch::Tensor area(const torch::Tensor& boxes) {
  return (boxes.select(-1, 2) - boxes.select(-1, 0)) * (boxes.select(-1, 3) - boxes.select(-1, 1));
}

// Intersection and union areas [N, M] of every pair.
std::pair<torch::Tensor, torch::Tensor> intersection_and_union(const torch::Tensor& boxes1,
                                                               const torch::Tensor& boxes2) {
  const auto top_left = at::max(boxes1.unsqueeze(1).narrow(-1, 0, 2), boxes2.unsqueeze(0).narrow(-1, 0, 2));
  const auto bottom_right = at::min(boxes1.unsqueeze(1).narrow(-1, 2, 2), boxes2.unsqueeze(0).narrow(-1, 2, 2));
  const auto overlap = (bottom_right - top_left).clamp_min(0);
  const auto intersection = overlap.select(-1, 0) * overlap.select(-1, 1);
  return {intersection, area(boxes1).unsqueeze(1) + area(boxes2).unsqueeze(0) - intersection};
}

}  // namespace

torch::Tensor box_cxcywh_to_xyxy(const torch::Tensor& boxes) {
  const auto center = boxes.narrow(-1, 0, 2);
  const auto half = 0.5 * boxes.narrow(-1, 2, 2);
  return at::cat({center - half, center + half}, -1);
}

torch::Tensor box_xyxy_to_cxcywh(const torch::Tensor& boxes) {
  const auto top_left = boxes.narrow(-1, 0, 2);
  const auto bottom_right = boxes.narrow(-1, 2, 2);
  return at::cat({0.5 * (top_left + bottom_right), bottom_right - top_left}, -1);
}

torch::Tensor box_iou(const torch::Tensor& boxes1, const torch::Tensor& boxes2) {
  const auto [intersection, union_area] = intersection_and_union(boxes1, boxes2);
  return intersection / union_area;
}

torch::Tensor generalized_box_iou(const torch::Tensor& boxes1, const torch::Tensor& boxes2) {
  const auto [intersection, union_area] = intersection_and_union(boxes1, boxes2);
  const auto top_left = at::min(boxes1.unsqueeze(1).narrow(-1, 0, 2), boxes2.unsqueeze(0).narrow(-1, 0, 2));
  const auto bottom_right = at::max(boxes1.unsqueeze(1).narrow(-1, 2, 2), boxes2.unsqueeze(0).narrow(-1, 2, 2));
  const auto extent = (bottom_right - top_left).clamp_min(0);
  const auto enclosing = extent.select(-1, 0) * extent.select(-1, 1);
  return intersection / union_area - (enclosing - union_area) / enclosing;
}

}  // namespace vit::models
