#include "data/color_ops.h"

#include <opencv2/imgproc.hpp>

#include <cmath>
#include <vector>

namespace vit::data {
namespace {

cv::Mat greyscale(const cv::Mat& image) {
  if (image.channels() == 1) return image;
  cv::Mat grey;
  cv::cvtColor(image, grey, cv::COLOR_RGB2GRAY);
  return grey;
}

void blend(cv::Mat& image, const cv::Mat& other, double factor) {
  cv::addWeighted(image, factor, other, 1.0 - factor, 0.0, image);
}

void apply_per_channel(cv::Mat& image, void (*op)(const cv::Mat&, cv::Mat&)) {
  std::vector<cv::Mat> planes;
  cv::split(image, planes);
  for (auto& plane : planes) op(plane, plane);
  cv::merge(planes, image);
}

}  // namespace

void adjust_brightness(cv::Mat& image, double factor) { image.convertTo(image, -1, factor, 0.0); }

void adjust_contrast(cv::Mat& image, double factor) {
  const double mean = cv::mean(greyscale(image))[0];
  image.convertTo(image, -1, factor, (1.0 - factor) * mean);
}

void adjust_saturation(cv::Mat& image, double factor) {
  if (image.channels() == 1) return;
  cv::Mat grey;
  cv::cvtColor(greyscale(image), grey, cv::COLOR_GRAY2RGB);
  blend(image, grey, factor);
}

void adjust_hue(cv::Mat& image, double shift) {
  const int offset = static_cast<int>(std::lround(shift * 256.0));
  if (image.channels() == 1 || offset == 0) return;  // the 8-bit HSV round trip alone would blur colours
  cv::Mat hsv;
  cv::cvtColor(image, hsv, cv::COLOR_RGB2HSV_FULL);  // hue over the full byte range 0..255
  for (int y = 0; y < hsv.rows; ++y) {
    auto* row = hsv.ptr<cv::Vec3b>(y);
    for (int x = 0; x < hsv.cols; ++x) row[x][0] = static_cast<uint8_t>((row[x][0] + offset + 256) % 256);
  }
  cv::cvtColor(hsv, image, cv::COLOR_HSV2RGB_FULL);
}

void adjust_sharpness(cv::Mat& image, double factor) {
  if (image.rows < 3 || image.cols < 3) return;
  const cv::Mat kernel = (cv::Mat_<float>(3, 3) << 1, 1, 1, 1, 5, 1, 1, 1, 1) / 13.0f;
  cv::Mat smoothed;
  cv::filter2D(image, smoothed, -1, kernel);
  image.row(0).copyTo(smoothed.row(0));
  image.row(image.rows - 1).copyTo(smoothed.row(image.rows - 1));
  image.col(0).copyTo(smoothed.col(0));
  image.col(image.cols - 1).copyTo(smoothed.col(image.cols - 1));
  blend(image, smoothed, factor);
}

void posterize(cv::Mat& image, int bits) {
  const auto mask = static_cast<uint8_t>(~((1 << (8 - bits)) - 1));
  cv::bitwise_and(image, cv::Scalar::all(mask), image);
}

void solarize(cv::Mat& image, int threshold) {
  cv::Mat lut(1, 256, CV_8U);
  for (int value = 0; value < 256; ++value)
    lut.at<uint8_t>(value) = static_cast<uint8_t>(value >= threshold ? 255 - value : value);
  cv::LUT(image, lut, image);
}

void autocontrast(cv::Mat& image) {
  apply_per_channel(image, [](const cv::Mat& plane, cv::Mat& out) {
    double low = 0.0;
    double high = 0.0;
    cv::minMaxLoc(plane, &low, &high);
    if (high > low) plane.convertTo(out, -1, 255.0 / (high - low), -low * 255.0 / (high - low));
  });
}

void equalize(cv::Mat& image) {
  apply_per_channel(image, [](const cv::Mat& plane, cv::Mat& out) { cv::equalizeHist(plane, out); });
}

}  // namespace vit::data
