#include "data/transforms.h"
#include "data/color_ops.h"
#include "data/mixup.h"
#include "data/rand_augment.h"
#include "support/data_test_support.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <opencv2/core.hpp>

#include <cmath>

namespace vit::data {
namespace {

TEST(RandomResizedCrop, BoxesFitTheScaleAndRatioRanges) {
  RandomResizedCropOptions options;
  options.enabled = true;
  Random random(42);
  for (int i = 0; i < 500; ++i) {
    const auto box = random_resized_crop_box(120, 200, options, random);
    ASSERT_GE(box.top, 0);
    ASSERT_GE(box.left, 0);
    ASSERT_LE(box.top + box.height, 120);
    ASSERT_LE(box.left + box.width, 200);
    const double fraction = static_cast<double>(box.height) * box.width / (120.0 * 200.0);
    EXPECT_GE(fraction, 0.08 * 0.85);  // rounding of w and h
    const double ratio = static_cast<double>(box.width) / box.height;
    EXPECT_GE(ratio, 0.75 * 0.8);
    EXPECT_LE(ratio, 4.0 / 3.0 * 1.25);
  }
}

TEST(RandomResizedCrop, FallsBackToAClampedCenterCrop) {
  RandomResizedCropOptions options;
  options.scale_min = options.scale_max = 1.0;
  options.ratio_min = options.ratio_max = 1.0;
  Random random(1);
  // A full-area square cannot fit a 100x20 image: center crop clamped to ratio 1.
  const auto box = random_resized_crop_box(20, 100, options, random);
  EXPECT_EQ(box.height, 20);
  EXPECT_EQ(box.width, 20);
  EXPECT_EQ(box.top, 0);
  EXPECT_EQ(box.left, 40);
}

TEST(CenterCrop, MatchesTorchvisionAndPadsSmallImages) {
  const auto box = center_crop_box(10, 11, 4, 4);
  EXPECT_EQ(box.top, 3);
  EXPECT_EQ(box.left, 4);  // round(3.5) = 4, like Python's round() on .5 with int((11-4)/2.0 + 0.5)
  const auto image = vit::testing::pattern_image(4, 4, 1);
  const auto padded = crop(image, center_crop_box(4, 4, 6, 6));
  ASSERT_EQ(padded.rows, 6);
  EXPECT_EQ(padded.at<cv::Vec3b>(0, 0), cv::Vec3b(0, 0, 0));
  EXPECT_EQ(padded.at<cv::Vec3b>(1, 1), image.at<cv::Vec3b>(0, 0));
}

TEST(Transform, ResizeShorterSideKeepsAspect) {
  const auto image = vit::testing::pattern_image(40, 20);
  const auto resized = resize_shorter_side(image, 10);
  EXPECT_EQ(resized.rows, 10);
  EXPECT_EQ(resized.cols, 20);
}

TEST(Transform, FlipMirrorsAndEvalPipelineIsDeterministic) {
  TransformOptions flip;
  flip.hflip = 1.0;
  const auto image = vit::testing::pattern_image(8, 8);
  Random random(3);
  const auto flipped = Transform(flip, 8, 3).augment(image, random);
  for (int x = 0; x < 8; ++x) EXPECT_EQ(flipped.at<cv::Vec3b>(2, x), image.at<cv::Vec3b>(2, 7 - x));

  TransformOptions eval;
  eval.crop_pct = 0.875;
  Transform transform(eval, 7, 3);
  std::vector<float> a(3 * 49);
  std::vector<float> b(3 * 49);
  Random r1(1);
  Random r2(2);
  transform.apply(vit::testing::pattern_image(30, 20), r1, a.data());
  transform.apply(vit::testing::pattern_image(30, 20), r2, b.data());
  EXPECT_EQ(a, b);
}

TEST(Transform, RandomCropWithPaddingKeepsSizeAndShiftsContent) {
  TransformOptions options;
  options.random_crop_padding = 4;
  Transform transform(options, 8, 3);
  const auto image = vit::testing::pattern_image(8, 8, 50);
  bool shifted = false;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Random random(seed);
    const auto out = transform.augment(image, random);
    ASSERT_EQ(out.rows, 8);
    ASSERT_EQ(out.cols, 8);
    shifted = shifted || cv::norm(out, image, cv::NORM_L1) > 0;
  }
  EXPECT_TRUE(shifted);
}

TEST(Transform, RandomErasingZeroesOneBox) {
  TransformOptions options;
  options.random_erasing.probability = 1.0;
  options.mean = {0.0};
  options.std = {1.0};
  Transform transform(options, 16, 1);
  cv::Mat white(16, 16, CV_8UC1, cv::Scalar(255));
  std::vector<float> out(256);
  Random random(5);
  transform.apply(white, random, out.data());
  const auto zeros = std::count(out.begin(), out.end(), 0.0f);
  EXPECT_GT(zeros, 0);
  EXPECT_LT(zeros, 256);
  EXPECT_EQ(std::count(out.begin(), out.end(), 1.0f) + zeros, 256);
}

TEST(ColorOps, FactorsOfOneAreIdentityAndExtremesBehave) {
  auto image = vit::testing::pattern_image(16, 16, 3);
  const cv::Mat original = image.clone();
  adjust_brightness(image, 1.0);
  adjust_contrast(image, 1.0);
  adjust_saturation(image, 1.0);
  adjust_hue(image, 0.0);
  EXPECT_LE(cv::norm(image, original, cv::NORM_INF), 1.0);  // hue round trip through HSV
  adjust_saturation(image, 0.0);
  std::vector<cv::Mat> planes;
  cv::split(image, planes);
  EXPECT_EQ(cv::norm(planes[0], planes[1], cv::NORM_INF), 0.0);
  adjust_brightness(image, 0.0);
  EXPECT_EQ(cv::countNonZero(image.reshape(1)), 0);
  cv::Mat grey(4, 4, CV_8UC1, cv::Scalar(200));
  solarize(grey, 128);
  EXPECT_EQ(grey.at<uint8_t>(0, 0), 55);
  posterize(grey, 2);
  EXPECT_EQ(grey.at<uint8_t>(0, 0), 0);
}

TEST(RandAugment, KeepsShapeAndIsSeedDeterministic) {
  RandAugmentOptions options;
  options.num_ops = 3;
  options.magnitude = 15;
  for (uint64_t seed = 0; seed < 30; ++seed) {
    auto a = vit::testing::pattern_image(20, 20, 9);
    auto b = a.clone();
    Random r1(seed);
    Random r2(seed);
    rand_augment(a, options, r1);
    rand_augment(b, options, r2);
    ASSERT_EQ(a.size(), cv::Size(20, 20));
    ASSERT_EQ(cv::norm(a, b, cv::NORM_INF), 0.0);
  }
}

TEST(Mixup, CutmixLambdaIsTheUnpastedArea) {
  MixupOptions options;
  options.cutmix_alpha = 1.0;
  auto images = torch::zeros({4, 1, 10, 10});
  for (int64_t i = 0; i < 4; ++i) images[i].fill_(static_cast<double>(i));
  const auto labels = torch::tensor({0, 1, 2, 3}, torch::kInt64);
  Random random(11);
  const auto targets = mix_batch(images, labels, 4, options, random);
  const double lambda = targets[0][0].item<double>();
  const double kept = images[0].eq(0).sum().item<double>() / 100.0;
  EXPECT_NEAR(lambda, kept, 1e-6);
  EXPECT_NEAR(targets[0][3].item<double>(), 1.0 - lambda, 1e-6);
}

TEST(Random, BetaSamplesHaveTheRightMean) {
  Random random(9);
  double total = 0.0;
  for (int i = 0; i < 20000; ++i) total += random.beta(2.0, 6.0);
  EXPECT_NEAR(total / 20000.0, 0.25, 0.01);
  double small = 0.0;
  for (int i = 0; i < 20000; ++i) small += random.beta(0.4, 0.4);
  EXPECT_NEAR(small / 20000.0, 0.5, 0.02);
}

}  // namespace
}  // namespace vit::data
