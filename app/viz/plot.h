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

// How a chart's axes read.
struct ChartAxes {
  std::string x_label;
  bool integer_x = false;  // ticks at whole numbers only (epochs)
  bool percent_y = false;  // fractions, labelled as percentages
};

// Round tick values ("nice": 1, 2, 2.5 or 5 times a power of ten apart) that cover [low, high],
// about `target` of them, with labels that have just enough decimals to differ. An empty range
// (one value) is widened around it so that the labels still differ.
struct Ticks {
  std::vector<double> values;
  std::vector<std::string> labels;
  double low = 0.0;  // the axis range: the outer ticks
  double high = 1.0;
};
Ticks nice_ticks(double low, double high, bool integer, int target = 5);

// A line chart with axes, ticks, a legend of the series that have points, and a title, as a BGR
// image. A single point is drawn as a marker with its value.
cv::Mat line_chart(const std::string& title, const ChartAxes& axes, const std::vector<Series>& series);
// A confusion-matrix heatmap (row-normalized colours, counts printed), with class names.
cv::Mat confusion_heatmap(const std::vector<std::vector<int64_t>>& counts, const std::vector<std::string>& names);
// The image (BGR or grey) encoded as PNG.
std::string png_bytes(const cv::Mat& image);
// Writes a PNG atomically; std::runtime_error naming the file on failure.
void write_png(const std::filesystem::path& file, const cv::Mat& image);

}  // namespace vit::app
