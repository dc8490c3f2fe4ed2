#pragma once

#include <torch/types.h>
#include <opencv2/core/mat.hpp>

#include <vector>

namespace vit::app {

// A non-negative [grid, grid] map, scaled to its maximum, as a JET heatmap blended half and half
// over `shown` (8-bit grey or RGB), enlarged to at least 224 pixels; BGR, ready for write_png.
cv::Mat heatmap_overlay(const torch::Tensor& map, const cv::Mat& shown);

// Equal-sized images in rows of `columns`, with 4-pixel white gaps.
cv::Mat tile_images(const std::vector<cv::Mat>& images, int columns);

}  // namespace vit::app
