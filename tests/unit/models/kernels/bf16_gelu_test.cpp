#include "models/kernels/bf16_gelu.h"

#include "app/train/autocast.h"
#include "models/kernels/bf16_products.h"
#include "models/layers/linear.h"
#include "models/layers/mlp.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

namespace vit::models {
namespace {

using vit::testing::ScopedBf16Products;

torch::Tensor bf16_of(const torch::Tensor& x) { return x.to(torch::kBFloat16).to(torch::kFloat64); }

// Exact (float64) GELU and its derivative.
torch::Tensor gelu64(const torch::Tensor& x) { return 0.5 * x * torch::erfc(-x * M_SQRT1_2); }
torch::Tensor gelu_derivative64(const torch::Tensor& x) {
  return 0.5 * torch::erfc(-x * M_SQRT1_2) + x * torch::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI);
}

// Whether every element is `exact` rounded to bf16. The kernel rounds twice, float64 to fp32 to
// bf16 (as c10 converts), which can differ where the fp32 lands on a bf16 tie: by one bf16 unit in
// the last place (2^-7 of the value at most), and rarely.
void expect_rounded_once(const torch::Tensor& value, const torch::Tensor& exact, const std::string& label) {
  EXPECT_TRUE(torch::equal(value.to(torch::kFloat64), bf16_of(value))) << label << ": not bf16 values";
  const auto off = value.to(torch::kFloat64).ne(bf16_of(exact));
  EXPECT_LE(off.sum().item<int64_t>(), value.numel() / 1000) << label;
  const auto error = (value.to(torch::kFloat64) - exact).abs();
  EXPECT_TRUE((error <= exact.abs() / 128 + 1e-38).all().item<bool>()) << label;
}

// Where the CPU lacks AVX512-BF16, gelu_of_bf16_values is the unfused layers, which
// ValuesAndGradientsAreTheUnfusedLayers covers.
#define SKIP_WITHOUT_KERNEL() \
  if (!gelu_of_bf16_values_vectorized()) GTEST_SKIP() << "this CPU has no AVX512-BF16: unfused"

// Preactivations as a product hands them over, 61 × 67 = 4,087 of them (vectors of 16 and a tail),
// with GELU's hard places: zeros, the tails (where Φ or 1 − Φ is tiny), NaN-free extremes.
torch::Tensor preactivations() {
  torch::manual_seed(31);
  auto x = torch::randn({61, 67}) * 3;
  auto flat = x.view(-1);
  const std::vector<float> edges = {0.0F, -0.0F, 1e-30F, -1e-30F, -5.0F, -8.5F, -12.0F, -20.0F, 6.0F, 40.0F, -0.7F};
  for (size_t i = 0; i < edges.size(); ++i) flat[static_cast<int64_t>(i * 367)] = edges[i];
  return x;
}

// The kernel takes fp32 (a product on the fp32 kernels, unrounded) or bf16 (a product on
// oneDNN's bf16 kernels) and answers in the same dtype.
const std::vector<torch::ScalarType> kHiddenDtypes = {torch::kFloat32, torch::kBFloat16};

TEST(Bf16Gelu, IsGeluOfTheBf16ValueRoundedToBf16) {
  SKIP_WITHOUT_KERNEL();
  for (const auto dtype : kHiddenDtypes) {
    const auto hidden = preactivations().to(dtype);
    const auto activated = gelu_of_bf16_values(hidden);
    ASSERT_EQ(activated.scalar_type(), dtype);
    ASSERT_EQ(activated.sizes(), hidden.sizes());
    expect_rounded_once(activated, gelu64(bf16_of(hidden)), "gelu of " + std::string(c10::toString(dtype)));
  }
}

TEST(Bf16Gelu, GradientIsTheBf16GradientTimesTheDerivativeRoundedToBf16) {
  SKIP_WITHOUT_KERNEL();
  for (const auto dtype : kHiddenDtypes) {
    const auto hidden = preactivations().to(dtype).requires_grad_();
    const auto activated = gelu_of_bf16_values(hidden);
    ASSERT_NE(activated.grad_fn(), nullptr);
    EXPECT_NE(activated.grad_fn()->name().find("Bf16Gelu"), std::string::npos) << "the kernel did not run";
    const auto upstream = torch::randn(hidden.sizes()).to(dtype);  // in fp32 not bf16 values: the kernel rounds it
    activated.backward(upstream);
    ASSERT_EQ(hidden.grad().scalar_type(), dtype);
    expect_rounded_once(hidden.grad(), bf16_of(upstream) * gelu_derivative64(bf16_of(hidden)),
                        "gradient of " + std::string(c10::toString(dtype)));
  }
}

// What the kernel replaces: LibTorch's bf16 GELU, and on fp32 autocast's cast of the product to
// bf16 before it and the cast back to fp32 for the next product, differentiated by autograd.
// LibTorch's bf16 GELU (oneDNN's on x86) rounds its own erf approximation, off by a bf16 unit on
// ~1 % of values and further in the negative tail; the kernel is to be as close to the float64
// definition everywhere.
TEST(Bf16Gelu, ValuesAndGradientsAreTheUnfusedLayersOrCloserToTheDefinition) {
  for (const auto dtype : kHiddenDtypes) {
    torch::manual_seed(32);
    const auto hidden = (torch::randn({64, 768}) * 2).to(dtype).requires_grad_();  // ~49 k: several tasks
    const auto upstream = torch::randn(hidden.sizes()).to(dtype);
    const auto fused = gelu_of_bf16_values(hidden);
    fused.backward(upstream);
    const auto fused_grad = hidden.grad().clone();
    hidden.mutable_grad().reset();
    const auto unfused = torch::gelu(hidden.to(torch::kBFloat16)).to(dtype);
    unfused.backward(upstream);

    const auto x64 = bf16_of(hidden.detach());
    const auto exact_values = gelu64(x64), exact_grads = bf16_of(upstream) * gelu_derivative64(x64);
    for (const auto& [name, ours, theirs, exact] : {std::tuple{"values", fused, unfused, exact_values},
                                                    std::tuple{"gradients", fused_grad, hidden.grad(), exact_grads}}) {
      const auto label = std::string(name) + " of " + c10::toString(dtype);
      EXPECT_GE(ours.eq(theirs).sum().item<int64_t>(), ours.numel() * 97 / 100) << label;
      const auto our_error = (ours.to(torch::kFloat64) - exact).abs() / exact.abs().clamp_min(1e-30);
      const auto their_error = (theirs.to(torch::kFloat64) - exact).abs() / exact.abs().clamp_min(1e-30);
      EXPECT_LE(our_error.max().item<double>(), std::max(their_error.max().item<double>(), 1.0 / 256)) << label;
      EXPECT_LE(our_error.mean().item<double>(), their_error.mean().item<double>()) << label;
    }
  }
}

// The first node of an output's autograd graph whose name contains `node_name`, or null.
torch::autograd::Node* node_named(const torch::Tensor& output, const std::string& node_name) {
  std::vector<torch::autograd::Node*> pending = {output.grad_fn().get()};
  while (!pending.empty()) {
    auto* node = pending.back();
    pending.pop_back();
    if (node == nullptr) continue;
    if (node->name().find(node_name) != std::string::npos) return node;
    for (const auto& edge : node->next_edges()) pending.push_back(edge.function.get());
  }
  return nullptr;
}

// The dtype the GELU kernel ran on in an output's graph (its output's); none where LibTorch's GELU ran.
std::optional<c10::ScalarType> gelu_kernel_dtype(const torch::Tensor& output) {
  const auto* kernel = node_named(output, "Bf16Gelu");
  if (kernel == nullptr) return std::nullopt;
  return c10::typeMetaToScalarType(kernel->input_metadata(0).dtype());
}

struct MlpRun {
  torch::Tensor output, input_grad, fc1_weight_grad, fc2_bias_grad;
  std::optional<c10::ScalarType> gelu_kernel;
  bool libtorch_gelu;
};

MlpRun run_mlp(Bf16Products products, double drop, bool training, bool autocast = true) {
  const ScopedBf16Products chosen(products);
  torch::manual_seed(33);
  Mlp mlp(MlpOptions{48, 192, drop});
  mlp->train(training);
  const auto x = torch::randn({2, 17, 48}).requires_grad_();
  torch::Tensor y;
  {
    const app::AutocastGuard guard(torch::kCPU, torch::kBFloat16, autocast);
    y = mlp(x);
  }
  (y.to(torch::kFloat32) * torch::randn(y.sizes())).sum().backward();
  auto params = mlp->named_parameters();
  return {y,
          x.grad(),
          params["fc1.weight"].grad(),
          params["fc2.bias"].grad(),
          gelu_kernel_dtype(y),
          node_named(y, "GeluBackward") != nullptr};
}

// The same layers one by one with LibTorch's bf16 GELU, each product on the given kernels (on the
// fp32 kernels, linear() rounds each product to bf16).
MlpRun run_unfused_layers(Bf16Products products) {
  const ScopedBf16Products chosen(products);
  torch::manual_seed(33);
  Mlp mlp(MlpOptions{48, 192, 0.0});
  const auto x = torch::randn({2, 17, 48}).requires_grad_();
  auto params = mlp->named_parameters();
  torch::Tensor y;
  {
    const app::AutocastGuard autocast(torch::kCPU, torch::kBFloat16, true);
    const auto hidden = torch::gelu(linear(x, params["fc1.weight"], params["fc1.bias"]));
    y = linear(hidden, params["fc2.weight"], params["fc2.bias"]);
  }
  (y.to(torch::kFloat32) * torch::randn(y.sizes())).sum().backward();
  return {y, x.grad(), params["fc1.weight"].grad(), params["fc2.bias"].grad(), std::nullopt, true};
}

// Between products on the fp32 kernels the hidden activations stay in fp32 and GELU rounds them;
// where the layers run one by one under bf16 autocast (oneDNN's products, or a dropout that drops
// between them) GELU reads and writes bf16; without autocast LibTorch's GELU runs.
TEST(Bf16Gelu, MlpRunsItInFp32BetweenProductsOnTheFp32KernelsAndInBf16Elsewhere) {
  SKIP_WITHOUT_KERNEL();
  EXPECT_EQ(run_mlp(Bf16Products::kFp32Blas, 0.0, true).gelu_kernel, torch::kFloat32);
  EXPECT_EQ(run_mlp(Bf16Products::kFp32Blas, 0.1, false).gelu_kernel, torch::kFloat32)
      << "dropout is the identity in eval mode";
  EXPECT_EQ(run_mlp(Bf16Products::kFp32Blas, 0.1, true).gelu_kernel, torch::kBFloat16)
      << "a dropout that drops: the layers one by one";
  EXPECT_EQ(run_mlp(Bf16Products::kOneDnn, 0.0, true).gelu_kernel, torch::kBFloat16);
  for (const auto products : {Bf16Products::kFp32Blas, Bf16Products::kOneDnn}) {
    EXPECT_FALSE(run_mlp(products, 0.0, true).libtorch_gelu);
    const auto fp32 = run_mlp(products, 0.0, true, /*autocast=*/false);
    EXPECT_EQ(fp32.gelu_kernel, std::nullopt);
    EXPECT_TRUE(fp32.libtorch_gelu);
  }
}

TEST(Bf16Gelu, FusedMlpComputesWhatItsLayersComputeUnfused) {
  for (const auto products : {Bf16Products::kFp32Blas, Bf16Products::kOneDnn}) {
    const auto fused = run_mlp(products, 0.0, true);
    const auto unfused = run_unfused_layers(products);
    ASSERT_EQ(fused.output.scalar_type(), torch::kBFloat16);
    const auto close = [](const torch::Tensor& a, const torch::Tensor& b) {
      // GELU's values may differ by one bf16 rounding next to a tie; the products carry that on.
      return vit::testing::relative_error(a, b) < 2e-3;
    };
    const auto kernels = products == Bf16Products::kOneDnn ? "oneDNN" : "fp32 kernels";
    EXPECT_TRUE(close(fused.output, unfused.output)) << kernels;
    EXPECT_TRUE(close(fused.input_grad, unfused.input_grad)) << kernels;
    EXPECT_TRUE(close(fused.fc1_weight_grad, unfused.fc1_weight_grad)) << kernels;
    EXPECT_TRUE(close(fused.fc2_bias_grad, unfused.fc2_bias_grad)) << kernels;
  }
}

}  // namespace
}  // namespace vit::models
