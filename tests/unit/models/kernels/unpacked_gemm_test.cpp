#include "models/kernels/unpacked_gemm.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

namespace vit::models {
namespace {

#define SKIP_WITHOUT_UNPACKED_GEMM() \
  if (!unpacked_gemm_applies(197, 197, 64)) GTEST_SKIP() << "this CPU has no AVX-512: the BLAS multiplies"

TEST(UnpackedGemm, TakesProductsOfAnAttentionHeadsSizeOnly) {
  SKIP_WITHOUT_UNPACKED_GEMM();
  EXPECT_TRUE(unpacked_gemm_applies(197, 64, 197));
  EXPECT_TRUE(unpacked_gemm_applies(128, 128, 64));
  EXPECT_FALSE(unpacked_gemm_applies(17, 17, 32));        // the BLAS's small-matrix kernels
  EXPECT_FALSE(unpacked_gemm_applies(2048, 2048, 2048));  // needs blocking
  EXPECT_FALSE(unpacked_gemm_applies(8, 64, 4096));       // an inner dimension past the kernel's
}

struct ProductShape {
  int64_t m, n, k;
};

// A [rows, cols] matrix inside a wider one (leading dimension cols + pad), as the heads of a fused
// qkv projection sit in it.
torch::Tensor strided(int64_t rows, int64_t cols, int64_t pad) {
  return torch::randn({rows, cols + pad}).narrow(1, 0, cols);
}

// Every layout of A and B, for the head's shapes of ViT-Ti/16 (scores, and output and gradients)
// and shapes that reach each tile and column block (tiles of 8, 6, 4, 2 and 1 rows; blocks of 4,
// 3, 2 and 1 vectors; partial last vectors; a transposed B whose sides are not multiples of 16).
TEST(UnpackedGemm, IsTheProductInFloat64ForEveryLayout) {
  SKIP_WITHOUT_UNPACKED_GEMM();
  torch::manual_seed(5);
  const std::vector<ProductShape> shapes = {{197, 197, 64}, {197, 64, 197}, {13, 33, 17}, {11, 150, 3},
                                            {20, 80, 20},   {7, 1, 5},      {3, 16, 1}};
  const float alpha = 0.125F;
  for (const auto& [m, n, k] : shapes) {
    for (const bool transpose_a : {false, true}) {
      for (const bool transpose_b : {false, true}) {
        const std::string label = std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k) +
                                  (transpose_a ? " A^T" : " A") + (transpose_b ? " B^T" : " B");
        const auto a = transpose_a ? strided(k, m, 5) : strided(m, k, 3);
        const auto b = transpose_b ? strided(n, k, 1) : strided(k, n, 2);
        auto c = torch::full({m, n + 7}, std::numeric_limits<float>::quiet_NaN());
        unpacked_gemm(m, n, k, alpha, a.data_ptr<float>(), a.stride(0), transpose_a, b.data_ptr<float>(), b.stride(0),
                      transpose_b, c.data_ptr<float>(), c.stride(0));

        const auto a64 = (transpose_a ? a.t() : a).to(torch::kFloat64);
        const auto b64 = (transpose_b ? b.t() : b).to(torch::kFloat64);
        const auto exact = alpha * a64.matmul(b64);
        // A sum of k fp32 products in order, each rounding once: within k units of 2^-24 of Σ|a·b|.
        const auto bound = alpha * a64.abs().matmul(b64.abs()) * (static_cast<double>(k) * std::ldexp(1.0, -23));
        const auto product = c.narrow(1, 0, n).to(torch::kFloat64);
        EXPECT_TRUE(((product - exact).abs() <= bound).all().item<bool>()) << label;
        EXPECT_TRUE(c.narrow(1, n, 7).isnan().all().item<bool>()) << label << ": wrote past its columns";
      }
    }
  }
}

// With rounds_to_bf16, each element as c10::BFloat16 converts it: ties to even, infinities kept,
// NaN to NaN, subnormals kept. C = a b^T with k = 1 and a ∈ {1, −1, 0.5}: each product exact,
// summed onto +0 as every product's sum starts (so a −0 reads +0).
TEST(UnpackedGemm, RoundsAsC10ConvertsToBf16WhenAsked) {
  SKIP_WITHOUT_UNPACKED_GEMM();
  const std::vector<float> a = {1.0F, -1.0F, 0.5F};
  const std::vector<float> b = {
      1.0F + 0x1p-8F, 1.0F + 3 * 0x1p-8F, 1.0F + 0x1p-9F, 3e38F,       -0.0F,       1e-40F, INFINITY, -INFINITY, NAN,
      0.1F,           -7.3e-5F,           65504.0F,       1.0F / 3.0F, 2.0F / 3.0F, 1e20F,  5.0F,     0.0F};
  const auto m = static_cast<int64_t>(a.size()), n = static_cast<int64_t>(b.size());
  std::vector<float> c(static_cast<size_t>(m * n));
  unpacked_gemm(m, n, 1, 1.0F, a.data(), 1, false, b.data(), n, false, c.data(), n, true);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      const float expected = static_cast<float>(c10::BFloat16(0.0F + a[i] * b[j]));
      const float written = c[static_cast<size_t>(i * n + j)];
      if (std::isnan(expected)) {
        EXPECT_TRUE(std::isnan(written)) << i << ", " << j;
      } else {
        EXPECT_EQ(std::memcmp(&written, &expected, sizeof(float)), 0)
            << i << ", " << j << ": " << written << " against " << expected;
      }
    }
  }
}

}  // namespace
}  // namespace vit::models
