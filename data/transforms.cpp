#include "data/transforms.h"

#include "data/color_ops.h"
#include "data/rand_augment.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>

namespace vit::data {
namespace {

constexpr int kAttempts = 10;

int rounded(double value) { return static_cast<int>(std::lround(value)); }

std::pair<int, int> area_and_ratio_box(double area, double scale_min, double scale_max, double ratio_min,
                                       double ratio_max, Random& random) {
  const double target_area = area * random.uniform(scale_min, scale_max);
  const double aspect = std::exp(random.uniform(std::log(ratio_min), std::log(ratio_max)));
  return {rounded(std::sqrt(target_area * aspect)), rounded(std::sqrt(target_area / aspect))};
}

std::vector<double> per_channel(const std::vector<double>& values, int channels, double fallback) {
  if (values.empty()) return std::vector<double>(static_cast<size_t>(channels), fallback);
  if (values.size() == 1) return std::vector<double>(static_cast<size_t>(channels), values[0]);
  return values;
}

}  // namespace

CropBox random_resized_crop_box(int height, int width, const RandomResizedCropOptions& options, Random& random) {
  const double area = static_cast<double>(height) * width;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    const auto [w, h] =
        area_and_ratio_box(area, options.scale_min, options.scale_max, options.ratio_min, options.ratio_max, random);
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const int top = static_cast<int>(random.integer(0, height - h + 1));
      const int left = static_cast<int>(random.integer(0, width - w + 1));
      return {top, left, h, w};
    }
  }
  const double in_ratio = static_cast<double>(width) / height;
  int w = width;
  int h = height;
  // At least a pixel: an extreme ratio range would otherwise leave an empty box to resize.
  if (in_ratio < options.ratio_min) {
    h = std::max(1, rounded(w / options.ratio_min));
  } else if (in_ratio > options.ratio_max) {
    w = std::max(1, rounded(h * options.ratio_max));
  }
  return {(height - h) / 2, (width - w) / 2, h, w};
}

CropBox center_crop_box(int height, int width, int crop_height, int crop_width) {
  return {rounded((height - crop_height) / 2.0), rounded((width - crop_width) / 2.0), crop_height, crop_width};
}

std::optional<CropBox> random_erasing_box(int height, int width, const RandomErasingOptions& options, Random& random) {
  const double area = static_cast<double>(height) * width;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    // torchvision draws h from sqrt(area * ratio): the ratio here is height / width.
    const auto [h, w] =
        area_and_ratio_box(area, options.scale_min, options.scale_max, options.ratio_min, options.ratio_max, random);
    if (h < height && w < width && h > 0 && w > 0) {
      const int top = static_cast<int>(random.integer(0, height - h + 1));
      const int left = static_cast<int>(random.integer(0, width - w + 1));
      return CropBox{top, left, h, w};
    }
  }
  return std::nullopt;
}

cv::Mat resize_to(const cv::Mat& image, int height, int width) {
  if (image.rows == height && image.cols == width) return image;
  // Bilinear aliases once the image shrinks by 2x or more; area averaging then stands in for
  // PIL's antialiased bilinear at a fraction of its cost.
  const bool shrinking_twofold = 2 * height <= image.rows && 2 * width <= image.cols;
  cv::Mat resized;
  cv::resize(image, resized, cv::Size(width, height), 0, 0, shrinking_twofold ? cv::INTER_AREA : cv::INTER_LINEAR);
  return resized;
}

cv::Mat resize_shorter_side(const cv::Mat& image, int shorter) {
  if (image.rows <= image.cols) {
    return resize_to(image, shorter, static_cast<int>(static_cast<int64_t>(shorter) * image.cols / image.rows));
  }
  return resize_to(image, static_cast<int>(static_cast<int64_t>(shorter) * image.rows / image.cols), shorter);
}

cv::Mat crop(const cv::Mat& image, const CropBox& box) {
  const cv::Rect wanted(box.left, box.top, box.width, box.height);
  const cv::Rect inside = wanted & cv::Rect(0, 0, image.cols, image.rows);
  if (inside == wanted) return image(wanted);
  cv::Mat padded = cv::Mat::zeros(box.height, box.width, image.type());
  if (inside.area() > 0) image(inside).copyTo(padded(inside - wanted.tl()));
  return padded;
}

void color_jitter(cv::Mat& image, const ColorJitterOptions& options, Random& random) {
  // torchvision applies the four adjustments in a random order, each with its own factor.
  std::array<int, 4> order = {0, 1, 2, 3};
  for (int i = 3; i > 0; --i)
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(random.integer(0, i + 1))]);
  const auto factor = [&](double strength) { return random.uniform(std::max(0.0, 1.0 - strength), 1.0 + strength); };
  for (const int op : order) {
    if (op == 0 && options.brightness > 0) adjust_brightness(image, factor(options.brightness));
    if (op == 1 && options.contrast > 0) adjust_contrast(image, factor(options.contrast));
    if (op == 2 && options.saturation > 0) adjust_saturation(image, factor(options.saturation));
    if (op == 3 && options.hue > 0) adjust_hue(image, random.uniform(-options.hue, options.hue));
  }
}

Transform::Transform(TransformOptions options, int size, int channels)
    : options_(std::move(options)), size_(size), channels_(channels) {
  mean_ = per_channel(options_.mean, channels, 0.0);
  std_ = per_channel(options_.std, channels, 1.0);
  const auto& mean = mean_;
  const auto& std = std_;
  lookup_.resize(static_cast<size_t>(channels));
  for (size_t c = 0; c < lookup_.size(); ++c) {
    for (int value = 0; value < 256; ++value) {
      lookup_[c][static_cast<size_t>(value)] = static_cast<float>((value / 255.0 - mean[c]) / std[c]);
    }
  }
}

namespace {

// The geometric steps, moving the objects' boxes (when there are any) with the pixels.
cv::Mat resized(const cv::Mat& image, cv::Mat result, ObjectBoxes* boxes) {
  if (boxes != nullptr) {
    scale_boxes(*boxes, static_cast<double>(result.cols) / image.cols, static_cast<double>(result.rows) / image.rows);
  }
  return result;
}

cv::Mat cropped(const cv::Mat& image, const CropBox& box, ObjectBoxes* boxes) {
  if (boxes != nullptr) crop_boxes(*boxes, box.left, box.top, box.width, box.height);
  return crop(image, box);
}

}  // namespace

cv::Mat Transform::augment(const cv::Mat& input, Random& random, ObjectBoxes* boxes) const {
  if (boxes != nullptr && options_.rand_augment.num_ops > 0) {
    throw std::logic_error("Transform: RandAugment's geometric operations do not move boxes");
  }
  cv::Mat image = input;
  if (options_.resize > 0) image = resized(image, resize_shorter_side(image, static_cast<int>(options_.resize)), boxes);
  if (options_.crop_pct > 0) {
    image = resized(image, resize_shorter_side(image, static_cast<int>(std::floor(size_ / options_.crop_pct))), boxes);
  }
  if (options_.center_crop || options_.crop_pct > 0)
    image = cropped(image, center_crop_box(image.rows, image.cols, size_, size_), boxes);
  if (options_.random_resized_crop.enabled) {
    const auto box = random_resized_crop_box(image.rows, image.cols, options_.random_resized_crop, random);
    const auto part = cropped(image, box, boxes);
    image = resized(part, resize_to(part, size_, size_), boxes);
  }
  if (options_.random_crop_padding >= 0) {
    const int pad = static_cast<int>(options_.random_crop_padding);
    const int top = static_cast<int>(random.integer(0, std::max(1, image.rows + 2 * pad - size_ + 1))) - pad;
    const int left = static_cast<int>(random.integer(0, std::max(1, image.cols + 2 * pad - size_ + 1))) - pad;
    image = cropped(image, {top, left, size_, size_}, boxes);
  }
  if (options_.hflip > 0 && random.bernoulli(options_.hflip)) {
    cv::Mat flipped;
    cv::flip(image, flipped, 1);
    if (boxes != nullptr) flip_boxes(*boxes, image.cols);
    image = flipped;
  }
  if (options_.color_jitter.enabled() || options_.rand_augment.num_ops > 0) {
    image = image.clone();  // the pixel adjustments below work in place; never on the dataset's memory
    if (options_.color_jitter.enabled()) color_jitter(image, options_.color_jitter, random);
    if (options_.rand_augment.num_ops > 0) rand_augment(image, options_.rand_augment, random);
  }
  return resized(image, resize_to(image, size_, size_), boxes);
}

void Transform::normalize_into(const cv::Mat& image, float* out) const {
  const size_t plane = static_cast<size_t>(size_) * size_;
  for (int y = 0; y < size_; ++y) {
    const uint8_t* row = image.ptr<uint8_t>(y);
    for (int x = 0; x < size_; ++x) {
      for (int c = 0; c < channels_; ++c) {
        out[static_cast<size_t>(c) * plane + static_cast<size_t>(y) * size_ + x] =
            lookup_[static_cast<size_t>(c)][row[x * channels_ + c]];
      }
    }
  }
}

void Transform::apply_bytes(const cv::Mat& image, Random& random, uint8_t* out, ObjectBoxes* boxes) const {
  if (erases()) throw std::logic_error("apply_bytes: random erasing needs normalized float pixels");
  const auto augmented = augment(image, random, boxes);
  const size_t plane = static_cast<size_t>(size_) * size_;
  for (int y = 0; y < size_; ++y) {
    const uint8_t* row = augmented.ptr<uint8_t>(y);
    for (int x = 0; x < size_; ++x) {
      for (int c = 0; c < channels_; ++c)
        out[static_cast<size_t>(c) * plane + static_cast<size_t>(y) * size_ + x] = row[x * channels_ + c];
    }
  }
}

void Transform::apply(const cv::Mat& image, Random& random, float* out, ObjectBoxes* boxes) const {
  normalize_into(augment(image, random, boxes), out);
  if (options_.random_erasing.probability > 0 && random.bernoulli(options_.random_erasing.probability)) {
    if (const auto box = random_erasing_box(size_, size_, options_.random_erasing, random)) {
      const size_t plane = static_cast<size_t>(size_) * size_;
      for (int c = 0; c < channels_; ++c) {
        for (int y = box->top; y < box->top + box->height; ++y) {
          std::fill_n(out + c * plane + static_cast<size_t>(y) * size_ + box->left, box->width, 0.0f);
        }
      }
    }
  }
}

}  // namespace vit::data
