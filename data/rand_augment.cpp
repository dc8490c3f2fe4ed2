#include "data/rand_augment.h"

#include "data/color_ops.h"

#include <opencv2/imgproc.hpp>

#include <cmath>

namespace vit::data {
namespace {

enum class Op {
  Identity,
  ShearX,
  ShearY,
  TranslateX,
  TranslateY,
  Rotate,
  Brightness,
  Color,
  Contrast,
  Sharpness,
  Posterize,
  Solarize,
  AutoContrast,
  Equalize,
  kCount
};

void warp(cv::Mat& image, const cv::Mat& affine) {
  cv::Mat warped;
  cv::warpAffine(image, warped, affine, image.size(), cv::INTER_NEAREST, cv::BORDER_CONSTANT, cv::Scalar::all(0));
  image = warped;
}

// The value of bin `magnitude` in linspace(0, max, bins).
double level(const RandAugmentOptions& options, double max) {
  const auto bins = std::max<int64_t>(options.num_magnitude_bins, 2);
  return max * static_cast<double>(options.magnitude) / static_cast<double>(bins - 1);
}

void apply(cv::Mat& image, Op op, const RandAugmentOptions& options, double sign) {
  switch (op) {
    case Op::Identity:
    case Op::kCount:
      return;
    case Op::ShearX:
      return warp(image, (cv::Mat_<double>(2, 3) << 1, sign * level(options, 0.3), 0, 0, 1, 0));
    case Op::ShearY:
      return warp(image, (cv::Mat_<double>(2, 3) << 1, 0, 0, sign * level(options, 0.3), 1, 0));
    case Op::TranslateX:
      return warp(image, (cv::Mat_<double>(2, 3) << 1, 0, sign * level(options, 150.0 / 331.0 * image.cols), 0, 1, 0));
    case Op::TranslateY:
      return warp(image, (cv::Mat_<double>(2, 3) << 1, 0, 0, 0, 1, sign * level(options, 150.0 / 331.0 * image.rows)));
    case Op::Rotate: {
      const cv::Point2f center((image.cols - 1) / 2.0f, (image.rows - 1) / 2.0f);
      return warp(image, cv::getRotationMatrix2D(center, sign * level(options, 30.0), 1.0));
    }
    case Op::Brightness:
      return adjust_brightness(image, 1.0 + sign * level(options, 0.9));
    case Op::Color:
      return adjust_saturation(image, 1.0 + sign * level(options, 0.9));
    case Op::Contrast:
      return adjust_contrast(image, 1.0 + sign * level(options, 0.9));
    case Op::Sharpness:
      return adjust_sharpness(image, 1.0 + sign * level(options, 0.9));
    case Op::Posterize:
      return posterize(image, 8 - static_cast<int>(std::lround(level(options, 4.0))));
    case Op::Solarize:
      return solarize(image, static_cast<int>(std::lround(255.0 - level(options, 255.0))));
    case Op::AutoContrast:
      return autocontrast(image);
    case Op::Equalize:
      return equalize(image);
  }
}

bool is_signed(Op op) {
  return op == Op::ShearX || op == Op::ShearY || op == Op::TranslateX || op == Op::TranslateY || op == Op::Rotate ||
         op == Op::Brightness || op == Op::Color || op == Op::Contrast || op == Op::Sharpness;
}

}  // namespace

void rand_augment(cv::Mat& image, const RandAugmentOptions& options, Random& random) {
  for (int64_t i = 0; i < options.num_ops; ++i) {
    const auto op = static_cast<Op>(random.integer(0, static_cast<int64_t>(Op::kCount)));
    const double sign = is_signed(op) && random.bernoulli(0.5) ? -1.0 : 1.0;
    apply(image, op, options, sign);
  }
}

}  // namespace vit::data
