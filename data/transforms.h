#pragma once

#include "data/object_boxes.h"
#include "data/random.h"
#include "data/transform_options.h"

#include <opencv2/core/mat.hpp>

#include <array>
#include <optional>
#include <vector>

namespace vit::data {

struct CropBox {
  int top;
  int left;
  int height;
  int width;
};

// torchvision's RandomResizedCrop.get_params: up to 10 draws of area fraction and log-uniform
// aspect ratio that fit, else a center crop clamped to the ratio range.
CropBox random_resized_crop_box(int height, int width, const RandomResizedCropOptions& options, Random& random);
// torchvision's CenterCrop box (may extend past the image, which is then zero-padded).
CropBox center_crop_box(int height, int width, int crop_height, int crop_width);
// torchvision's RandomErasing.get_params; nullopt when no box fits in 10 draws.
std::optional<CropBox> random_erasing_box(int height, int width, const RandomErasingOptions& options, Random& random);

// Shorter side to `shorter` pixels, aspect kept (torchvision's Resize(int)): area interpolation
// when shrinking 2x or more (close to PIL's antialiased bilinear), bilinear otherwise.
cv::Mat resize_shorter_side(const cv::Mat& image, int shorter);
cv::Mat resize_to(const cv::Mat& image, int height, int width);
// The box's pixels, zero where it lies outside the image.
cv::Mat crop(const cv::Mat& image, const CropBox& box);
void color_jitter(cv::Mat& image, const ColorJitterOptions& options, Random& random);

// The whole per-sample pipeline of one split, from a decoded 8-bit image (grey or RGB with the
// model's channel count) to a normalized float [C, size, size] written in place.
class Transform {
 public:
  Transform(TransformOptions options, int size, int channels);

  // `boxes`: the image's objects, moved, clipped and dropped as the resizes, crops and flips move
  // the pixels (in the output's pixels afterwards); RandAugment's geometry cannot carry them.
  void apply(const cv::Mat& image, Random& random, float* out, ObjectBoxes* boxes = nullptr) const;
  // The augmented 8-bit pixels as [C, size, size] bytes, for normalization on the device. Only
  // for pipelines without random erasing, which works on normalized values.
  void apply_bytes(const cv::Mat& image, Random& random, uint8_t* out, ObjectBoxes* boxes = nullptr) const;
  // The 8-bit image before normalization (for `vit data inspect`).
  cv::Mat augment(const cv::Mat& image, Random& random, ObjectBoxes* boxes = nullptr) const;

  int size() const { return size_; }
  int channels() const { return channels_; }
  bool erases() const { return options_.random_erasing.probability > 0; }
  // Per channel, what normalization subtracts and divides by (of [0, 1] pixel values).
  const std::vector<double>& mean() const { return mean_; }
  const std::vector<double>& std() const { return std_; }
  const TransformOptions& options() const { return options_; }

 private:
  void normalize_into(const cv::Mat& image, float* out) const;

  TransformOptions options_;
  int size_;
  int channels_;
  std::vector<double> mean_;
  std::vector<double> std_;
  std::vector<std::array<float, 256>> lookup_;  // per channel: byte value -> normalized float
};

}  // namespace vit::data
