#pragma once

#include <opencv2/core/mat.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace vit::app {

struct Series {
  std::string name;
  std::vector<double> x;
  std::vector<double> y;
  cv::Scalar color;  // BGR
};

// A line chart with axes, ticks, a legend and a title, as a BGR image.
cv::Mat line_chart(const std::string& title, const std::string& x_label, const std::vector<Series>& series);
// A confusion-matrix heatmap (row-normalized colours, counts printed), with class names.
cv::Mat confusion_heatmap(const std::vector<std::vector<int64_t>>& counts, const std::vector<std::string>& names);
// Writes a PNG atomically; std::runtime_error naming the file on failure.
void write_png(const std::filesystem::path& file, const cv::Mat& image);

}  // namespace vit::app
