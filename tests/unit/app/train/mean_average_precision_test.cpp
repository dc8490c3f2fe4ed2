// COCO-style AP on cases small enough to compute by hand.
#include "app/train/mean_average_precision.h"

#include <gtest/gtest.h>

#include <cmath>

namespace vit::app {
namespace {

const BoxCorners kLeft{0, 0, 10, 10};
const BoxCorners kRight{20, 20, 30, 30};

TEST(MeanAveragePrecision, PerfectPredictionsScoreOne) {
  const std::vector<LabelledBox> objects = {{0, 0, kLeft}, {0, 1, kRight}, {1, 0, kRight}};
  const std::vector<ScoredBox> found = {{0, 0, 0.9, kLeft}, {0, 1, 0.8, kRight}, {1, 0, 0.7, kRight}};
  const auto result = mean_average_precision(found, objects, 3);
  EXPECT_DOUBLE_EQ(result.map, 1.0);
  EXPECT_DOUBLE_EQ(result.ap50, 1.0);
  EXPECT_DOUBLE_EQ(result.ap75, 1.0);
  EXPECT_DOUBLE_EQ(result.per_class[0], 1.0);
  EXPECT_DOUBLE_EQ(result.per_class[1], 1.0);
  EXPECT_TRUE(std::isnan(result.per_class[2]));  // no objects of class 2: no AP, not in the mean
}

TEST(MeanAveragePrecision, OneMissedObjectHalvesTheRecall) {
  const std::vector<LabelledBox> objects = {{0, 0, kLeft}, {1, 0, kLeft}};
  const std::vector<ScoredBox> found = {{0, 0, 0.9, kLeft}};
  // Precision 1 up to recall 0.5: 51 of the 101 recall points.
  EXPECT_NEAR(mean_average_precision(found, objects, 1).map, 51.0 / 101.0, 1e-12);
}

TEST(MeanAveragePrecision, ADuplicateIsAFalsePositive) {
  const std::vector<LabelledBox> objects = {{0, 0, kLeft}};
  // Below the match: recall 1 at precision 1 first, the duplicate only adds a false positive after.
  EXPECT_DOUBLE_EQ(mean_average_precision({{0, 0, 0.9, kLeft}, {0, 0, 0.8, kLeft}}, objects, 1).map, 1.0);
  // A higher-scored false detection first: precision 0.5 at recall 1.
  const std::vector<ScoredBox> false_first = {{0, 0, 0.9, kRight}, {0, 0, 0.8, kLeft}};
  EXPECT_NEAR(mean_average_precision(false_first, objects, 1).map, 0.5, 1e-12);
}

TEST(MeanAveragePrecision, TheWrongClassFindsNothing) {
  const std::vector<LabelledBox> objects = {{0, 0, kLeft}};
  const auto result = mean_average_precision({{0, 1, 0.9, kLeft}}, objects, 2);
  EXPECT_DOUBLE_EQ(result.per_class[0], 0.0);
  EXPECT_TRUE(std::isnan(result.per_class[1]));
  EXPECT_DOUBLE_EQ(result.map, 0.0);
}

TEST(MeanAveragePrecision, ScoreOrderDecidesThePrecisionCurve) {
  const std::vector<LabelledBox> objects = {{0, 0, kLeft}, {0, 0, kRight}};
  const BoxCorners elsewhere{40, 40, 50, 50};
  // Hit, miss, hit: precision 1 up to recall 0.5, then 2/3 up to recall 1.
  const std::vector<ScoredBox> mixed = {{0, 0, 0.9, kLeft}, {0, 0, 0.8, elsewhere}, {0, 0, 0.7, kRight}};
  EXPECT_NEAR(mean_average_precision(mixed, objects, 1).map, (51.0 + 50.0 * 2.0 / 3.0) / 101.0, 1e-12);
  // The same detections with the miss scored lowest: perfect.
  const std::vector<ScoredBox> ordered = {{0, 0, 0.9, kLeft}, {0, 0, 0.8, kRight}, {0, 0, 0.7, elsewhere}};
  EXPECT_DOUBLE_EQ(mean_average_precision(ordered, objects, 1).map, 1.0);
}

TEST(MeanAveragePrecision, IouThresholdsCountSeparately) {
  // IoU 0.62 matches at 0.50, 0.55 and 0.60: 3 of the 10 thresholds.
  const std::vector<LabelledBox> objects = {{0, 0, kLeft}};
  const auto result = mean_average_precision({{0, 0, 0.9, {0, 0, 10, 6.2}}}, objects, 1);
  EXPECT_DOUBLE_EQ(result.ap50, 1.0);
  EXPECT_DOUBLE_EQ(result.ap75, 0.0);
  EXPECT_NEAR(result.map, 0.3, 1e-12);
  EXPECT_NEAR(box_iou(kLeft, {0, 0, 10, 6.2}), 0.62, 1e-12);
}

TEST(MeanAveragePrecision, OnlyTheBestDetectionsPerImageCount) {
  const std::vector<LabelledBox> objects = {{0, 0, kLeft}};
  const std::vector<ScoredBox> found = {{0, 0, 0.9, kRight}, {0, 0, 0.8, kLeft}};
  EXPECT_DOUBLE_EQ(mean_average_precision(found, objects, 1, /*max_detections=*/1).map, 0.0);
}

}  // namespace
}  // namespace vit::app
