#include "models/layers/pos_embed.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace vit::models {
namespace {

TEST(Sinusoid1d, MatchesTheTransformerFormula) {
  const int64_t dim = 16;
  const auto table = sinusoid_1d(50, dim);
  ASSERT_EQ(table.sizes(), (std::vector<int64_t>{50, dim}));
  const auto at = [&](int64_t pos, int64_t channel) { return table.index({pos, channel}).item<double>(); };
  for (const int64_t pos : {0, 1, 3, 17, 49}) {
    for (const int64_t i : {0, 1, 2, 7}) {
      const double angle = static_cast<double>(pos) / std::pow(10000.0, 2.0 * static_cast<double>(i) / dim);
      EXPECT_NEAR(at(pos, 2 * i), std::sin(angle), 1e-6) << "pos " << pos << " i " << i;
      EXPECT_NEAR(at(pos, 2 * i + 1), std::cos(angle), 1e-6) << "pos " << pos << " i " << i;
    }
  }
  EXPECT_NEAR(at(3, 4), std::sin(3.0 / std::pow(10000.0, 0.25)), 1e-6);
  EXPECT_NEAR(at(3, 5), std::cos(3.0 / std::pow(10000.0, 0.25)), 1e-6);
}

TEST(SinCos2d, EncodesColumnThenRow) {
  const int64_t grid = 4;
  const int64_t dim = 16;
  const auto table = sincos_2d(grid, dim);
  ASSERT_EQ(table.sizes(), (std::vector<int64_t>{grid * grid, dim}));
  const int64_t quarter = dim / 4;
  for (int64_t row = 0; row < grid; ++row) {
    for (int64_t col = 0; col < grid; ++col) {
      const int64_t patch = row * grid + col;
      for (int64_t k = 0; k < quarter; ++k) {
        const double omega = 1.0 / std::pow(10000.0, static_cast<double>(k) / quarter);
        EXPECT_NEAR(table.index({patch, k}).item<double>(), std::sin(col * omega), 1e-6);
        EXPECT_NEAR(table.index({patch, quarter + k}).item<double>(), std::cos(col * omega), 1e-6);
        EXPECT_NEAR(table.index({patch, 2 * quarter + k}).item<double>(), std::sin(row * omega), 1e-6);
        EXPECT_NEAR(table.index({patch, 3 * quarter + k}).item<double>(), std::cos(row * omega), 1e-6);
      }
    }
  }
}

}  // namespace
}  // namespace vit::models
