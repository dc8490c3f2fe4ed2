#include "models/kernels/batched_matmul.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

namespace vit::models {
namespace {

using MakeOperands = std::function<std::pair<torch::Tensor, torch::Tensor>()>;

struct Layout {
  std::string name;
  MakeOperands make;
};

// Operands laid out as attention and its backward pass hand them over, plus layouts BLAS cannot
// read directly.
std::vector<Layout> layouts() {
  return {
      {"contiguous",
       [] {
         return std::pair{torch::randn({6, 5, 3}), torch::randn({6, 3, 4})};
       }},
      {"q and k^T split from a fused qkv",
       [] {
         const auto qkv = torch::randn({2, 17, 3, 4, 8}).permute({2, 0, 3, 1, 4});
         return std::pair{qkv[0], qkv[1].transpose(-2, -1)};
       }},
      {"weights and v split from a fused qkv",
       [] {
         const auto v = torch::randn({2, 17, 3, 4, 8}).permute({2, 0, 3, 1, 4})[2];
         return std::pair{torch::randn({2, 4, 17, 17}).softmax(-1), v};
       }},
      {"both transposed",
       [] {
         return std::pair{torch::randn({3, 4, 7}).transpose(-2, -1), torch::randn({3, 5, 4}).transpose(-2, -1)};
       }},
      {"single rows and columns",
       [] {
         return std::pair{torch::randn({4, 1, 6}), torch::randn({4, 6, 1})};
       }},
      {"every other column (no unit stride)",
       [] {
         return std::pair{torch::randn({3, 5, 12}).slice(-1, 0, 12, 2), torch::randn({3, 6, 2})};
       }},
      {"a batch dimension broadcast by expand",
       [] {
         return std::pair{torch::randn({1, 5, 3}).expand({4, 5, 3}), torch::randn({4, 3, 2})};
       }},
      {"an expanded matrix (zero strides)",
       [] {
         return std::pair{torch::randn({2, 1, 3}).expand({2, 5, 3}), torch::randn({2, 3, 4})};
       }},
  };
}

TEST(BatchedMatmul, EqualsMatmulForEveryLayout) {
  torch::manual_seed(3);
  for (const auto& layout : layouts()) {
    const auto [a, b] = layout.make();
    const auto expected = torch::matmul(a.to(torch::kFloat64), b.to(torch::kFloat64));
    const auto product = batched_matmul(a, b);
    EXPECT_EQ(product.sizes(), expected.sizes()) << layout.name;
    EXPECT_TRUE(torch::allclose(product.to(torch::kFloat64), expected, 1e-5, 1e-5)) << layout.name;
  }
}

TEST(BatchedMatmul, GradientsEqualMatmulsForEveryLayout) {
  torch::manual_seed(4);
  for (const auto& layout : layouts()) {
    const auto [a_values, b_values] = layout.make();
    const auto a = a_values.detach().requires_grad_(), b = b_values.detach().requires_grad_();
    const auto a64 = a_values.to(torch::kFloat64).requires_grad_(), b64 = b_values.to(torch::kFloat64).requires_grad_();
    const auto upstream = torch::randn(torch::matmul(a64, b64).sizes(), torch::kFloat64);

    (batched_matmul(a, b) * upstream.to(torch::kFloat32)).sum().backward();
    (torch::matmul(a64, b64) * upstream).sum().backward();
    EXPECT_TRUE(torch::allclose(a.grad().to(torch::kFloat64), a64.grad(), 1e-5, 1e-5)) << layout.name;
    EXPECT_TRUE(torch::allclose(b.grad().to(torch::kFloat64), b64.grad(), 1e-5, 1e-5)) << layout.name;
  }
}

TEST(BatchedMatmul, OnlyTheOperandThatNeedsAGradientGetsOne) {
  const auto a = torch::randn({2, 3, 4}).requires_grad_();
  const auto b = torch::randn({2, 4, 5});
  batched_matmul(a, b).sum().backward();
  EXPECT_TRUE(a.grad().defined());
  EXPECT_FALSE(b.grad().defined());
}

TEST(BatchedMatmul, GivesTheSameBitsOnOneThreadAndOnTwo) {
  torch::manual_seed(5);
  const auto a = torch::randn({64, 17, 32}), b = torch::randn({64, 32, 17});
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  const auto one_thread = batched_matmul(a, b);
  torch::set_num_threads(2);
  const auto two_threads = batched_matmul(a, b);
  torch::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(one_thread, two_threads));
}

TEST(BatchedMatmul, LeavesOtherDtypesAndShapesToMatmul) {
  const auto a = torch::randn({2, 3, 4}, torch::kFloat64), b = torch::randn({2, 4, 5}, torch::kFloat64);
  EXPECT_TRUE(torch::equal(batched_matmul(a, b), torch::matmul(a, b)));
  const auto matrix = torch::randn({3, 4}), batch = torch::randn({2, 4, 5});  // broadcast by matmul
  EXPECT_TRUE(torch::allclose(batched_matmul(matrix, batch), torch::matmul(matrix, batch)));
  EXPECT_THROW(batched_matmul(torch::randn({2, 3, 4}), torch::randn({2, 5, 6})), c10::Error);
}

}  // namespace
}  // namespace vit::models
