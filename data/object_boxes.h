#pragma once

#include <cstdint>
#include <vector>

namespace vit::data {

// An object in an image: its box in pixels, (x0, y0) the top-left and (x1, y1) the bottom-right
// corner, and its class index.
struct ObjectBox {
  double x0 = 0.0;
  double y0 = 0.0;
  double x1 = 0.0;
  double y1 = 0.0;
  int64_t category = 0;
};
using ObjectBoxes = std::vector<ObjectBox>;

// What the geometric transforms do to the objects of the image they change.
// The image scaled by (sx, sy).
void scale_boxes(ObjectBoxes& boxes, double sx, double sy);
// The image cut to the rectangle at (left, top) of width x height (which may reach past the image):
// boxes move with it, are clipped to it, and those left with no width or height are dropped
// (DETR's rule).
void crop_boxes(ObjectBoxes& boxes, double left, double top, double width, double height);
// The image mirrored left to right; `width` its width.
void flip_boxes(ObjectBoxes& boxes, double width);

}  // namespace vit::data
