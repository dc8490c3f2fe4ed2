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

void text(cv::Mat& image, const std::string& label, cv::Point at, double scale = 0.45) {
  cv::putText(image, label, at, cv::FONT_HERSHEY_SIMPLEX, scale, kInk, 1, cv::LINE_AA);
}

}  // namespace

Ticks nice_ticks(double low, double high, bool integer, int target) {
  if (high < low) std::swap(low, high);
  if (high == low) {
    const double pad = integer ? 1.0 : (low == 0.0 ? 1.0 : std::abs(low) * 0.05);
    low -= pad;
    high += pad;
  }
  const double rough = (high - low) / std::max(1, target - 1);
  const double power = std::pow(10.0, std::floor(std::log10(rough)));
  double step = power * 10.0;
  for (const double multiple : {1.0, 2.0, 2.5, 5.0}) {
    if (power * multiple >= rough) {
      step = power * multiple;
      break;
    }
  }
  if (integer) step = std::max(1.0, std::round(step));
  // Decimals that tell neighbours apart: those of the step (2.5 x 10^k needs one more).
  const double exponent = std::floor(std::log10(step) + 1e-9);
  const bool quarter = std::abs(step / std::pow(10.0, exponent) - 2.5) < 1e-6;
  const int decimals = integer ? 0 : std::max(0, static_cast<int>(-exponent) + (quarter ? 1 : 0));
  Ticks ticks;
  ticks.low = std::floor(low / step + 1e-9) * step;
  ticks.high = std::ceil(high / step - 1e-9) * step;
  for (double value = ticks.low; value <= ticks.high + step * 1e-6; value += step) {
    const double tick = std::abs(value) < step * 1e-9 ? 0.0 : value;  // no "-0"
    ticks.values.push_back(tick);
    std::ostringstream label;
    label << std::fixed << std::setprecision(decimals) << tick;
    ticks.labels.push_back(label.str());
  }
  return ticks;
}

cv::Mat line_chart(const std::string& title, const ChartAxes& axes, const std::vector<Series>& series) {
  cv::Mat image(kHeight, kWidth, CV_8UC3, cv::Scalar(255, 255, 255));
  const double y_scale = axes.percent_y ? 100.0 : 1.0;
  std::vector<Series> drawn;
  double x_min = std::numeric_limits<double>::max(), x_max = std::numeric_limits<double>::lowest();
  double y_min = x_min, y_max = x_max;
  for (const auto& s : series) {
    Series finite{s.name, {}, {}, s.color};
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      finite.x.push_back(s.x[i]);
      finite.y.push_back(s.y[i] * y_scale);
      x_min = std::min(x_min, s.x[i]);
      x_max = std::max(x_max, s.x[i]);
      y_min = std::min(y_min, finite.y.back());
      y_max = std::max(y_max, finite.y.back());
    }
    if (!finite.x.empty()) drawn.push_back(finite);
  }
  text(image, title, {kLeft, 25}, 0.6);
  if (drawn.empty()) return image;  // nothing to draw yet
  const auto x_ticks = nice_ticks(x_min, x_max, axes.integer_x, 6);
  const auto y_ticks = nice_ticks(y_min, y_max, false, 5);
  const int plot_w = kWidth - kLeft - kRight;
  const int plot_h = kHeight - kTop - kBottom;
  const auto to_pixel = [&](double x, double y) {
    return cv::Point(
        kLeft + static_cast<int>(std::lround((x - x_ticks.low) / (x_ticks.high - x_ticks.low) * plot_w)),
        kTop + plot_h - static_cast<int>(std::lround((y - y_ticks.low) / (y_ticks.high - y_ticks.low) * plot_h)));
  };
  const std::string unit = axes.percent_y ? "%" : "";
  for (size_t i = 0; i < y_ticks.values.size(); ++i) {
    const auto p = to_pixel(x_ticks.low, y_ticks.values[i]);
    cv::line(image, p, {kLeft + plot_w, p.y}, kGrid, 1);
    text(image, y_ticks.labels[i] + unit, {5, p.y + 4}, 0.4);
  }
  for (size_t i = 0; i < x_ticks.values.size(); ++i) {
    const auto q = to_pixel(x_ticks.values[i], y_ticks.low);
    cv::line(image, {q.x, kTop + plot_h}, {q.x, kTop + plot_h + 4}, kInk, 1);
    text(image, x_ticks.labels[i], {q.x - 4 * static_cast<int>(x_ticks.labels[i].size()), kTop + plot_h + 18}, 0.4);
  }
  cv::rectangle(image, {kLeft, kTop}, {kLeft + plot_w, kTop + plot_h}, kInk, 1);
  text(image, axes.x_label, {kLeft + plot_w / 2 - 20, kHeight - 10});
  // The legend sits in the title's band, right-aligned, where no line can run through it.
  int legend_x = kWidth - kRight;
  for (auto s = drawn.rbegin(); s != drawn.rend(); ++s) {
    int baseline = 0;
    const int label_width = cv::getTextSize(s->name, cv::FONT_HERSHEY_SIMPLEX, 0.42, 1, &baseline).width;
    legend_x -= label_width + 38;
    cv::line(image, {legend_x, 21}, {legend_x + 25, 21}, s->color, 2);
    text(image, s->name, {legend_x + 30, 25}, 0.42);
  }
  for (const auto& s : drawn) {
    std::vector<cv::Point> points;
    for (size_t i = 0; i < s.x.size(); ++i) points.push_back(to_pixel(s.x[i], s.y[i]));
    if (points.size() == 1) {
      cv::circle(image, points[0], 5, s.color, cv::FILLED, cv::LINE_AA);
      std::ostringstream value;
      value << std::setprecision(4) << s.y[0] << unit;
      text(image, value.str(), {points[0].x + 8, points[0].y - 8}, 0.42);
    } else {
      cv::polylines(image, points, false, s.color, 2, cv::LINE_AA);
    }
  }
  return image;
}

cv::Mat confusion_heatmap(const std::vector<std::vector<int64_t>>& counts, const std::vector<std::string>& names) {
  const int n = static_cast<int>(counts.size());
  const int cell = std::clamp(560 / std::max(1, n), 8, 60);
  // The title has a band of its own above the rotated column labels (they used to run through it).
  const int title_band = 32;
  const int margin = 130;
  const int top = title_band + margin;
  cv::Mat image(top + n * cell + 20, margin + n * cell + 20, CV_8UC3, cv::Scalar(255, 255, 255));
  text(image, "confusion: rows true class, columns predicted", {10, 22}, 0.5);
  for (int r = 0; r < n; ++r) {
    int64_t row_total = 0;
    for (const auto v : counts[static_cast<size_t>(r)]) row_total += v;
    for (int c = 0; c < n; ++c) {
      const auto count = counts[static_cast<size_t>(r)][static_cast<size_t>(c)];
      const double share = row_total > 0 ? static_cast<double>(count) / static_cast<double>(row_total) : 0.0;
      const auto shade = static_cast<uint8_t>(255.0 * (1.0 - share));
      const cv::Rect box(margin + c * cell, top + r * cell, cell, cell);
      cv::rectangle(image, box, cv::Scalar(255, shade, shade), cv::FILLED);
      if (cell >= 28) {
        cv::putText(image, std::to_string(count), {box.x + 3, box.y + cell / 2 + 4}, cv::FONT_HERSHEY_SIMPLEX, 0.35,
                    share > 0.5 ? cv::Scalar(255, 255, 255) : kInk, 1, cv::LINE_AA);
      }
    }
    const auto& name = r < static_cast<int>(names.size()) ? names[static_cast<size_t>(r)] : std::to_string(r);
    text(image, name.substr(0, 16), {5, top + r * cell + cell / 2 + 4}, 0.38);
  }
  for (int c = 0; c < n; ++c) {
    cv::Mat label(18, 120, CV_8UC3, cv::Scalar(255, 255, 255));
    const auto& name = c < static_cast<int>(names.size()) ? names[static_cast<size_t>(c)] : std::to_string(c);
    text(label, name.substr(0, 16), {2, 13}, 0.38);
    cv::Mat rotated;
    cv::rotate(label, rotated, cv::ROTATE_90_COUNTERCLOCKWISE);
    const int x = margin + c * cell + std::max(0, (cell - 18) / 2);
    if (x + rotated.cols <= image.cols) rotated.copyTo(image(cv::Rect(x, top - 122, rotated.cols, rotated.rows)));
  }
  return image;
}

std::string png_bytes(const cv::Mat& image) {
  std::vector<uint8_t> png;
  if (!cv::imencode(".png", image, png)) throw std::runtime_error("cannot encode a PNG image");
  return std::string(png.begin(), png.end());
}

void write_png(const std::filesystem::path& file, const cv::Mat& image) {
  write_text_atomically(file, png_bytes(image));
}

}  // namespace vit::app
