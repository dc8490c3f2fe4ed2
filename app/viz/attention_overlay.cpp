#include "app/viz/attention_overlay.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>

namespace vit::app {

cv::Mat heatmap_overlay(const torch::Tensor& map, const cv::Mat& shown) {
  const auto scaled = (map / map.max().clamp_min(1e-12)).to(torch::kFloat32).contiguous();
  cv::Mat heat(static_cast<int>(map.size(0)), static_cast<int>(map.size(1)), CV_32F, scaled.data_ptr<float>());
  cv::Mat heat8;
  heat.convertTo(heat8, CV_8U, 255.0);
  cv::resize(heat8, heat8, shown.size(), 0, 0, cv::INTER_CUBIC);
  cv::Mat colored;
  cv::applyColorMap(heat8, colored, cv::COLORMAP_JET);
  cv::Mat base;
  cv::cvtColor(shown, base, shown.channels() == 1 ? cv::COLOR_GRAY2BGR : cv::COLOR_RGB2BGR);
  cv::Mat blended;
  cv::addWeighted(base, 0.5, colored, 0.5, 0.0, blended);
  const int scale = std::max(1, 224 / blended.cols);
  cv::resize(blended, blended, blended.size() * scale, 0, 0, cv::INTER_NEAREST);
  return blended;
}

cv::Mat tile_images(const std::vector<cv::Mat>& images, int columns) {
  constexpr int kGap = 4;
  const int rows = (static_cast<int>(images.size()) + columns - 1) / columns;
  const auto size = images.front().size();
  cv::Mat canvas(rows * (size.height + kGap) - kGap, columns * (size.width + kGap) - kGap, images.front().type(),
                 cv::Scalar::all(255));
  for (size_t i = 0; i < images.size(); ++i) {
    const int row = static_cast<int>(i) / columns;
    const int column = static_cast<int>(i) % columns;
    images[i].copyTo(
        canvas(cv::Rect(column * (size.width + kGap), row * (size.height + kGap), size.width, size.height)));
  }
  return canvas;
}

}  // namespace vit::app
