#include "data/object_boxes.h"

#include <algorithm>

namespace vit::data {

void scale_boxes(ObjectBoxes& boxes, double sx, double sy) {
  for (auto& box : boxes) {
    box.x0 *= sx;
    box.x1 *= sx;
    box.y0 *= sy;
    box.y1 *= sy;
  }
}

void crop_boxes(ObjectBoxes& boxes, double left, double top, double width, double height) {
  for (auto& box : boxes) {
    box.x0 = std::clamp(box.x0 - left, 0.0, width);
    box.x1 = std::clamp(box.x1 - left, 0.0, width);
    box.y0 = std::clamp(box.y0 - top, 0.0, height);
    box.y1 = std::clamp(box.y1 - top, 0.0, height);
  }
  boxes.erase(std::remove_if(boxes.begin(), boxes.end(),
                             [](const ObjectBox& box) { return box.x1 <= box.x0 || box.y1 <= box.y0; }),
              boxes.end());
}

void flip_boxes(ObjectBoxes& boxes, double width) {
  for (auto& box : boxes) {
    const double x0 = width - box.x1;
    box.x1 = width - box.x0;
    box.x0 = x0;
  }
}

}  // namespace vit::data
