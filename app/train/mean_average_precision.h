#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace vit::app {

// A box as (x0, y0, x1, y1), in any consistent unit.
using BoxCorners = std::array<double, 4>;

struct ScoredBox {
  int64_t image = 0;
  int64_t category = 0;
  double score = 0.0;
  BoxCorners box{};
};

struct LabelledBox {
  int64_t image = 0;
  int64_t category = 0;
  BoxCorners box{};
};

// COCO's box AP, as pycocotools' COCOeval computes it for area "all": per category and IoU
// threshold (0.50, 0.55, ..., 0.95), each image's detections of that category (its best
// `max_detections` by score) are matched greedily in score order to the unmatched object of
// highest IoU at or above the threshold; precision over the category's detections of all images
// in score order is made monotone and read at the 101 recall points 0, 0.01, ..., 1 (0 past the
// highest recall), and averaged. Categories without objects have no AP (NaN) and stay out of the
// means. Crowd regions are not modelled (the COCO reader drops them).
struct AveragePrecision {
  double map = 0.0;               // mAP@[.5:.95]
  double ap50 = 0.0;              // at IoU 0.5
  double ap75 = 0.0;              // at IoU 0.75
  std::vector<double> per_class;  // AP@[.5:.95] per category, NaN where it has no objects
};
AveragePrecision mean_average_precision(const std::vector<ScoredBox>& detections,
                                        const std::vector<LabelledBox>& objects, int64_t num_classes,
                                        int64_t max_detections = 100);

double box_iou(const BoxCorners& a, const BoxCorners& b);

}  // namespace vit::app
