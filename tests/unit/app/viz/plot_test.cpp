#include "app/viz/plot.h"

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include <random>
#include <set>

namespace vit::app {
namespace {

TEST(NiceTicks, AccuraciesGetRoundValuesWithEnoughDigits) {
  const auto ticks = nice_ticks(0.762, 0.821, false);
  EXPECT_EQ(ticks.labels, (std::vector<std::string>{"0.76", "0.78", "0.80", "0.82", "0.84"}));
  const auto percent = nice_ticks(76.2, 82.1, false);
  EXPECT_EQ(percent.labels, (std::vector<std::string>{"76", "78", "80", "82", "84"}));
}

TEST(NiceTicks, EpochsAreWholeNumbers) {
  EXPECT_EQ(nice_ticks(1, 10, true, 6).labels, (std::vector<std::string>{"0", "2", "4", "6", "8", "10"}));
  // The old axis put ticks at 3.75 / 6.5 / 9.25 for 12 epochs.
  for (const auto& label : nice_ticks(1, 12, true, 6).labels) EXPECT_EQ(label.find('.'), std::string::npos) << label;
  EXPECT_EQ(nice_ticks(1, 1, true).labels, (std::vector<std::string>{"0", "1", "2"}));  // a one-epoch run
}

TEST(NiceTicks, OneValueGetsDistinctLabelsAroundIt) {
  // A one-epoch loss.png repeated "2.28" on three ticks.
  const auto ticks = nice_ticks(2.28, 2.28, false);
  EXPECT_EQ(std::set<std::string>(ticks.labels.begin(), ticks.labels.end()).size(), ticks.labels.size());
  EXPECT_LT(ticks.low, 2.28);
  EXPECT_GT(ticks.high, 2.28);
  EXPECT_EQ(nice_ticks(0.0, 0.0, false).labels.size() >= 3, true);
}

TEST(NiceTicks, AnyRangeIsCoveredByFewRoundDistinctTicks) {
  std::mt19937 random(7);
  std::uniform_real_distribution<double> exponent(-6.0, 5.0), unit(0.0, 1.0);
  for (int trial = 0; trial < 2000; ++trial) {
    const double scale = std::pow(10.0, exponent(random));
    const double low = (unit(random) - 0.5) * scale * 10.0;
    const double high = low + unit(random) * scale;
    const auto ticks = nice_ticks(low, high, false);
    ASSERT_LE(ticks.low, low);
    ASSERT_GE(ticks.high, high);
    ASSERT_GE(ticks.values.size(), 2u) << low << " " << high;
    ASSERT_LE(ticks.values.size(), 11u) << low << " " << high;
    ASSERT_EQ(std::set<std::string>(ticks.labels.begin(), ticks.labels.end()).size(), ticks.labels.size())
        << low << " " << high;
    const double step = ticks.values[1] - ticks.values[0];
    const double mantissa = step / std::pow(10.0, std::floor(std::log10(step) + 1e-9));
    ASSERT_TRUE(std::abs(mantissa - 1) < 1e-6 || std::abs(mantissa - 2) < 1e-6 || std::abs(mantissa - 2.5) < 1e-6 ||
                std::abs(mantissa - 5) < 1e-6)
        << step;
  }
}

TEST(LineChart, TheLegendListsOnlyWhatIsDrawn) {
  const Series top1{"top-1", {1, 2, 3}, {0.5, 0.6, 0.7}, cv::Scalar(200, 90, 30)};
  const Series no_ema{"EMA top-1", {}, {}, cv::Scalar(60, 160, 60)};
  const ChartAxes axes{"epoch", true, true};
  const auto with_empty = line_chart("validation accuracy", axes, {top1, no_ema});
  const auto without = line_chart("validation accuracy", axes, {top1});
  EXPECT_EQ(cv::norm(with_empty, without, cv::NORM_L1), 0.0);
}

TEST(LineChart, ASinglePointIsDrawnVisibly) {
  const Series loss{"train", {1}, {2.28}, cv::Scalar(200, 90, 30)};
  const auto chart = line_chart("loss", {"epoch", true, false}, {loss});
  const auto empty = line_chart("loss", {"epoch", true, false}, {});
  cv::Mat blue;
  cv::inRange(chart, cv::Scalar(190, 80, 20), cv::Scalar(210, 100, 40), blue);
  EXPECT_GT(cv::countNonZero(blue), 60);  // the marker (and the legend's line), not a 3-pixel dot
  EXPECT_GT(cv::norm(chart, empty, cv::NORM_L1), 0.0);
}

}  // namespace
}  // namespace vit::app
