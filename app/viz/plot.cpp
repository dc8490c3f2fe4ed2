#include "app/viz/plot.h"

#include "app/io/file_util.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace vit::app {
namespace {

constexpr int kWidth = 640;
constexpr int kHeight = 400;
constexpr int kLeft = 70;
constexpr int kRight = 20;
constexpr int kTop = 40;
constexpr int kBottom = 50;
const cv::Scalar kInk(40, 40, 40);
const cv::Scalar kGrid(225, 225, 225);

std::string short_number(double value) {
  std::ostringstream out;
  const double magnitude = std::abs(value);
  if (magnitude != 0.0 && (magnitude < 1e-2 || magnitude >= 1e4)) {
    out << std::scientific << std::setprecision(1) << value;
  } else {
    out << std::setprecision(3) << value;
  }
  return out.str();
}

void text(cv::Mat& image, const std::string& label, cv::Point at, double scale = 0.45) {
  cv::putText(image, label, at, cv::FONT_HERSHEY_SIMPLEX, scale, kInk, 1, cv::LINE_AA);
}

}  // namespace

cv::Mat line_chart(const std::string& title, const std::string& x_label, const std::vector<Series>& series) {
  cv::Mat image(kHeight, kWidth, CV_8UC3, cv::Scalar(255, 255, 255));
  double x_min = std::numeric_limits<double>::max(), x_max = std::numeric_limits<double>::lowest();
  double y_min = x_min, y_max = x_max;
  for (const auto& s : series) {
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      x_min = std::min(x_min, s.x[i]);
      x_max = std::max(x_max, s.x[i]);
      y_min = std::min(y_min, s.y[i]);
      y_max = std::max(y_max, s.y[i]);
    }
  }
  text(image, title, {kLeft, 25}, 0.6);
  if (x_min > x_max) return image;  // nothing to draw yet
  if (x_max == x_min) x_max = x_min + 1.0;
  if (y_max == y_min) y_max = y_min + (y_min == 0.0 ? 1.0 : std::abs(y_min) * 0.1);
  const int plot_w = kWidth - kLeft - kRight;
  const int plot_h = kHeight - kTop - kBottom;
  const auto to_pixel = [&](double x, double y) {
    return cv::Point(kLeft + static_cast<int>((x - x_min) / (x_max - x_min) * plot_w),
                     kTop + plot_h - static_cast<int>((y - y_min) / (y_max - y_min) * plot_h));
  };
  for (int tick = 0; tick <= 4; ++tick) {
    const double y = y_min + (y_max - y_min) * tick / 4.0;
    const auto p = to_pixel(x_min, y);
    cv::line(image, p, {kLeft + plot_w, p.y}, kGrid, 1);
    text(image, short_number(y), {5, p.y + 4}, 0.4);
    const double x = x_min + (x_max - x_min) * tick / 4.0;
    const auto q = to_pixel(x, y_min);
    text(image, short_number(x), {q.x - 10, kTop + plot_h + 18}, 0.4);
  }
  cv::rectangle(image, {kLeft, kTop}, {kLeft + plot_w, kTop + plot_h}, kInk, 1);
  text(image, x_label, {kLeft + plot_w / 2 - 20, kHeight - 10});
  int legend_y = kTop + 18;
  for (const auto& s : series) {
    std::vector<cv::Point> points;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (std::isfinite(s.y[i])) points.push_back(to_pixel(s.x[i], s.y[i]));
    }
    if (points.size() == 1) cv::circle(image, points[0], 3, s.color, cv::FILLED, cv::LINE_AA);
    if (points.size() > 1) cv::polylines(image, points, false, s.color, 2, cv::LINE_AA);
    cv::line(image, {kLeft + plot_w - 150, legend_y - 4}, {kLeft + plot_w - 125, legend_y - 4}, s.color, 2);
    text(image, s.name, {kLeft + plot_w - 118, legend_y}, 0.42);
    legend_y += 18;
  }
  return image;
}

cv::Mat confusion_heatmap(const std::vector<std::vector<int64_t>>& counts, const std::vector<std::string>& names) {
  const int n = static_cast<int>(counts.size());
  const int cell = std::clamp(560 / std::max(1, n), 8, 60);
  const int margin = 130;
  cv::Mat image(margin + n * cell + 20, margin + n * cell + 20, CV_8UC3, cv::Scalar(255, 255, 255));
  text(image, "confusion (rows: true, columns: predicted)", {10, 20}, 0.5);
  for (int r = 0; r < n; ++r) {
    int64_t row_total = 0;
    for (const auto v : counts[static_cast<size_t>(r)]) row_total += v;
    for (int c = 0; c < n; ++c) {
      const auto count = counts[static_cast<size_t>(r)][static_cast<size_t>(c)];
      const double share = row_total > 0 ? static_cast<double>(count) / static_cast<double>(row_total) : 0.0;
      const auto shade = static_cast<uint8_t>(255.0 * (1.0 - share));
      const cv::Rect box(margin + c * cell, margin + r * cell, cell, cell);
      cv::rectangle(image, box, cv::Scalar(255, shade, shade), cv::FILLED);
      if (cell >= 28) {
        cv::putText(image, std::to_string(count), {box.x + 3, box.y + cell / 2 + 4}, cv::FONT_HERSHEY_SIMPLEX, 0.35,
                    share > 0.5 ? cv::Scalar(255, 255, 255) : kInk, 1, cv::LINE_AA);
      }
    }
    const auto& name = r < static_cast<int>(names.size()) ? names[static_cast<size_t>(r)] : std::to_string(r);
    text(image, name.substr(0, 16), {5, margin + r * cell + cell / 2 + 4}, 0.38);
  }
  for (int c = 0; c < n; ++c) {
    cv::Mat label(18, 120, CV_8UC3, cv::Scalar(255, 255, 255));
    const auto& name = c < static_cast<int>(names.size()) ? names[static_cast<size_t>(c)] : std::to_string(c);
    text(label, name.substr(0, 16), {2, 13}, 0.38);
    cv::Mat rotated;
    cv::rotate(label, rotated, cv::ROTATE_90_COUNTERCLOCKWISE);
    const int x = margin + c * cell + std::max(0, (cell - 18) / 2);
    if (x + rotated.cols <= image.cols) rotated.copyTo(image(cv::Rect(x, margin - 122, rotated.cols, rotated.rows)));
  }
  return image;
}

void write_png(const std::filesystem::path& file, const cv::Mat& image) {
  std::vector<uint8_t> png;
  if (!cv::imencode(".png", image, png)) throw std::runtime_error(file.string() + ": PNG encoding failed");
  write_text_atomically(file, std::string(png.begin(), png.end()));
}

}  // namespace vit::app
