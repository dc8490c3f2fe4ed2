#pragma once

#include <torch/types.h>

namespace vit::models {

// Boxes as DETR predicts them, (cx, cy, w, h), and as their overlaps are measured, (x0, y0, x1, y1);
// [..., 4] either way.
torch::Tensor box_cxcywh_to_xyxy(const torch::Tensor& boxes);
torch::Tensor box_xyxy_to_cxcywh(const torch::Tensor& boxes);

// Pairwise over [N, 4] and [M, 4] (x0, y0, x1, y1) boxes: [N, M] intersection over union, and the
// generalized IoU (Rezatofighi et al., 2019): IoU - (enclosing area - union) / enclosing area, in
// [-1, 1]; torchvision.ops.generalized_box_iou's definition.
torch::Tensor box_iou(const torch::Tensor& boxes1, const torch::Tensor& boxes2);
torch::Tensor generalized_box_iou(const torch::Tensor& boxes1, const torch::Tensor& boxes2);

}  // namespace vit::models
