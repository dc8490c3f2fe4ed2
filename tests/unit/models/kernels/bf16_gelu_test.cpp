#include "models/kernels/bf16_gelu.h"

#include "app/train/autocast.h"
#include "models/kernels/bf16_products.h"
#include "models/layers/linear.h"
#include "models/layers/mlp.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <limits>
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
  // bf16 conversion flushes values below fp32's smallest normal to zero.
  EXPECT_TRUE((error <= exact.abs() / 128 + std::numeric_limits<float>::min()).all().item<bool>()) << label;
}

// Where the CPU lacks AVX512-BF16, gelu_of_bf16_values is the unfused layers, which
// ValuesAndGradientsAreTheUnfusedLayers covers.
#define SKIP_WITHOUT_BF16_GELU() \
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
  SKIP_WITHOUT_BF16_GELU();
  for (const auto dtype : kHiddenDtypes) {
    const auto hidden = preactivations().to(dtype);
    const auto activated = gelu_of_bf16_values(hidden);
    ASSERT_EQ(activated.scalar_type(), dtype);
    ASSERT_EQ(activated.sizes(), hidden.sizes());
    expect_rounded_once(activated, gelu64(bf16_of(hidden)), "gelu of " + std::string(c10::toString(dtype)));
  }
}

TEST(Bf16Gelu, GradientIsTheBf16GradientTimesTheDerivativeRoundedToBf16) {
  SKIP_WITHOUT_BF16_GELU();
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

// A product without its bias and the bias: bf16(gelu(bf16(product + bias))), the product's
// gradient bf16(bf16(grad) · gelu'(bf16(product + bias))) and the bias's their sum over the rows,
// in the product's dtype: bf16 (oneDNN's products) or fp32, unrounded (the fp32 kernels').
TEST(Bf16GeluOfProductPlusBias, AddsTheBiasBeforeGeluAndSumsItsGradientOverTheRows) {
  SKIP_WITHOUT_BF16_GELU();
  for (const auto dtype : kHiddenDtypes) {
    const auto label = std::string(c10::toString(dtype)) + " product";
    torch::manual_seed(34);
    const auto product = preactivations().to(dtype).requires_grad_();
    const auto bias = torch::randn({product.size(1)}).requires_grad_();
    const auto activated = gelu_of_bf16_product_plus_bias(product, bias);
    ASSERT_EQ(activated.scalar_type(), dtype) << label;
    ASSERT_NE(activated.grad_fn(), nullptr);
    EXPECT_NE(activated.grad_fn()->name().find("Bf16GeluOfProductPlusBias"), std::string::npos);
    const auto preactivation = bf16_of(product.detach().to(torch::kFloat64) + bias.detach().to(torch::kFloat64));
    expect_rounded_once(activated, gelu64(preactivation), "values of the " + label);

    const auto upstream = torch::randn(product.sizes()).to(dtype);  // fp32 ones not bf16 values: rounded
    activated.backward(upstream);
    ASSERT_EQ(product.grad().scalar_type(), dtype) << label;
    ASSERT_EQ(bias.grad().scalar_type(), torch::kFloat32) << label;
    expect_rounded_once(product.grad(), bf16_of(upstream) * gelu_derivative64(preactivation),
                        "gradient of the " + label);
    // The bias's gradient: the product's (bf16 values) gradient summed in fp32.
    const auto rows = product.grad().to(torch::kFloat64);
    const auto bias_error = (bias.grad().to(torch::kFloat64) - rows.sum(0)).abs() / rows.abs().sum(0).clamp_min(1e-30);
    EXPECT_LT(bias_error.max().item<double>(), 1e-6) << label;
  }
}

// On an fp32 product the pre-activation is rounded once, from the fp32 sum of product and bias:
// the values and the product's gradient are, bit for bit, those of GELU of that sum.
TEST(Bf16GeluOfProductPlusBias, OnAnFp32ProductIsGeluOfTheFp32Sum) {
  SKIP_WITHOUT_BF16_GELU();
  torch::manual_seed(36);
  const auto product = (torch::randn({130, 72}) * 3).requires_grad_();
  const auto bias = torch::randn({72});
  const auto upstream = torch::randn(product.sizes());
  const auto fused = gelu_of_bf16_product_plus_bias(product, bias);
  fused.backward(upstream);
  const auto fused_grad = product.grad().clone();
  product.mutable_grad().reset();
  const auto unfused = gelu_of_bf16_values(product + bias);
  unfused.backward(upstream);
  EXPECT_TRUE(torch::equal(fused, unfused));
  EXPECT_TRUE(torch::equal(fused_grad, product.grad()));
}

// More rows than a block of the bias's gradient, on 1 and 2 threads, with any leading dimensions
// and a product that is not contiguous: the same bits.
TEST(Bf16GeluOfProductPlusBias, SameBitsOnAnyThreadsLeadingDimensionsAndLayout) {
  SKIP_WITHOUT_BF16_GELU();
  for (const auto dtype : kHiddenDtypes) {
    const auto label = std::string(c10::toString(dtype)) + " product";
    torch::manual_seed(35);
    const auto product = (torch::randn({3, 150, 72}) * 2).to(dtype);
    const auto bias = torch::randn({72});
    const auto upstream = torch::randn(product.sizes()).to(dtype);
    const auto run = [&](const torch::Tensor& p) {
      const auto x = p.detach().requires_grad_();
      const auto b = bias.detach().requires_grad_();
      const auto y = gelu_of_bf16_product_plus_bias(x, b);
      y.backward(upstream.view(y.sizes()));
      return std::tuple{y, x.grad(), b.grad()};
    };
    const int threads = at::get_num_threads();
    at::set_num_threads(1);
    const auto [y1, dx1, db1] = run(product);
    at::set_num_threads(2);
    const auto [y2, dx2, db2] = run(product);
    const auto [y_flat, dx_flat, db_flat] = run(product.view({450, 72}));
    const auto transposed = product.transpose(0, 1).contiguous().transpose(0, 1);  // same values, other strides
    const auto [y_strided, dx_strided, db_strided] = run(transposed);
    at::set_num_threads(threads);
    EXPECT_TRUE(torch::equal(y1, y2) && torch::equal(dx1, dx2) && torch::equal(db1, db2))
        << label << ", 1 vs 2 threads";
    EXPECT_TRUE(torch::equal(y1.view({450, 72}), y_flat) && torch::equal(db1, db_flat)) << label << ", flattened";
    EXPECT_TRUE(torch::equal(y1, y_strided) && torch::equal(dx1, dx_strided) && torch::equal(db1, db_strided))
        << label << ", not contiguous";
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
  torch::Tensor output, input_grad, fc1_weight_grad, fc2_bias_grad, fc1_bias_grad;
  std::optional<c10::ScalarType> gelu_kernel;
  bool libtorch_gelu;
  bool gelu_adds_bias;
};

// A small MLP's hidden activations (2 × 17 × 192) stay in cache; a large one's (8 × 256 × 512,
// 2^20) do not, and there under oneDNN's products GELU adds fc1's bias (bias_in_gelu_pays).
struct MlpShape {
  int64_t batch, tokens, in_features, hidden_features;
};
constexpr MlpShape kSmallMlp{2, 17, 48, 192};
constexpr MlpShape kLargeMlp{8, 256, 64, 512};

MlpRun run_mlp(Bf16Products products, double drop, bool training, bool autocast = true,
               const MlpShape& shape = kSmallMlp) {
  const ScopedBf16Products chosen(products);
  torch::manual_seed(33);
  Mlp mlp(MlpOptions{shape.in_features, shape.hidden_features, drop});
  mlp->train(training);
  const auto x = torch::randn({shape.batch, shape.tokens, shape.in_features}).requires_grad_();
  torch::Tensor y;
  {
    const app::AutocastGuard guard(torch::kCPU, torch::kBFloat16, autocast);
    y = mlp(x);
  }
  (y.to(torch::kFloat32) * torch::randn(y.sizes())).sum().backward();
  auto params = mlp->named_parameters();
  return {y, x.grad(), params["fc1.weight"].grad(), params["fc2.bias"].grad(), params["fc1.bias"].grad(),
          gelu_kernel_dtype(y), node_named(y, "GeluBackward") != nullptr,
          // On AMX's tiles the MLP's node adds it as fc1's sums are written (amx_linear.h's amx_mlp).
          node_named(y, "Bf16GeluOfProductPlusBias") != nullptr || node_named(y, "AmxMlp") != nullptr};
}

// The MLP's layers as `layers` composes them from its parameters, under bf16 autocast on the given
// kernels, with run_mlp's parameters, input and output gradient.
using MlpLayers = std::function<torch::Tensor(const torch::Tensor& x, torch::OrderedDict<std::string, torch::Tensor>&)>;
MlpRun run_layers(Bf16Products products, const MlpShape& shape, const MlpLayers& layers) {
  const ScopedBf16Products chosen(products);
  torch::manual_seed(33);
  Mlp mlp(MlpOptions{shape.in_features, shape.hidden_features, 0.0});
  const auto x = torch::randn({shape.batch, shape.tokens, shape.in_features}).requires_grad_();
  auto params = mlp->named_parameters();
  torch::Tensor y;
  {
    const app::AutocastGuard autocast(torch::kCPU, torch::kBFloat16, true);
    y = layers(x, params);
  }
  (y.to(torch::kFloat32) * torch::randn(y.sizes())).sum().backward();
  return {
      y,    x.grad(), params["fc1.weight"].grad(), params["fc2.bias"].grad(), params["fc1.bias"].grad(), std::nullopt,
      true, false};
}

// The same layers one by one with LibTorch's bf16 GELU, each product on the given kernels (on the
// fp32 kernels, linear() rounds each product to bf16).
MlpRun run_unfused_layers(Bf16Products products, const MlpShape& shape = kSmallMlp) {
  return run_layers(products, shape, [](const torch::Tensor& x, auto& params) {
    const auto hidden = torch::gelu(linear(x, params["fc1.weight"], params["fc1.bias"]));
    return linear(hidden, params["fc2.weight"], params["fc2.bias"]);
  });
}

// Between products on the fp32 kernels the hidden activations stay in fp32 and GELU rounds them;
// where the layers run one by one under bf16 autocast (oneDNN's products, or a dropout that drops
// between them) GELU reads and writes bf16; without autocast LibTorch's GELU runs.
TEST(Bf16Gelu, MlpRunsItInFp32BetweenProductsOnTheFp32KernelsAndInBf16Elsewhere) {
  SKIP_WITHOUT_BF16_GELU();
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

// The MLP in float64 (exact GELU), from the same parameters and input as run_mlp's.
MlpRun run_mlp_in_float64(const MlpShape& shape) {
  torch::manual_seed(33);
  Mlp mlp(MlpOptions{shape.in_features, shape.hidden_features, 0.0});
  mlp->to(torch::kFloat64);
  const auto x = torch::randn({shape.batch, shape.tokens, shape.in_features}).to(torch::kFloat64).requires_grad_();
  const auto y = mlp(x);
  (y * torch::randn(y.sizes()).to(torch::kFloat64)).sum().backward();
  auto params = mlp->named_parameters();
  return {
      y,    x.grad(), params["fc1.weight"].grad(), params["fc2.bias"].grad(), params["fc1.bias"].grad(), std::nullopt,
      true, false};
}

// GELU adds fc1's bias under bf16 autocast, on either kernels, in training and evaluation, where
// the hidden activations outgrow the cache and no dropout drops between; not for small layers, nor
// without autocast.
TEST(Bf16Gelu, MlpAddsFc1sBiasInGeluUnderBf16AutocastOfLargeLayers) {
  SKIP_WITHOUT_BF16_GELU();
  for (const auto products : {Bf16Products::kOneDnn, Bf16Products::kFp32Blas}) {
    const auto kernels = products == Bf16Products::kOneDnn ? "oneDNN" : "fp32 kernels";
    EXPECT_TRUE(run_mlp(products, 0.0, true, true, kLargeMlp).gelu_adds_bias) << kernels;
    EXPECT_TRUE(run_mlp(products, 0.1, false, true, kLargeMlp).gelu_adds_bias) << kernels;
    EXPECT_FALSE(run_mlp(products, 0.1, true, true, kLargeMlp).gelu_adds_bias) << kernels << ", a dropout that drops";
    EXPECT_FALSE(run_mlp(products, 0.0, true, true, kSmallMlp).gelu_adds_bias) << kernels << ", small";
    EXPECT_FALSE(run_mlp(products, 0.0, true, false, kLargeMlp).gelu_adds_bias) << kernels << ", no autocast";
  }
  EXPECT_FALSE(bias_in_gelu_pays(kSmallMlp.batch * kSmallMlp.tokens * kSmallMlp.hidden_features));
}

// On the fp32 kernels the bias in GELU's pass changes no bit of the MLP's output or of the input's
// and weights' gradients: the fp32 sum of product and bias, rounded once, as the product with the
// bias (OpenBLAS adds the bias it was handed to the product) gives it. The bias's gradient is
// summed in another order and then rounded to bf16 by its cast: a bf16 unit apart at most.
TEST(Bf16Gelu, MlpWithTheBiasInGeluOnTheFp32KernelsIsTheBiasInTheProductBitForBit) {
  SKIP_WITHOUT_BF16_GELU();
  const auto fused = run_mlp(Bf16Products::kFp32Blas, 0.0, true, true, kLargeMlp);
  ASSERT_TRUE(fused.gelu_adds_bias);
  const auto in_the_product = run_layers(Bf16Products::kFp32Blas, kLargeMlp, [](const torch::Tensor& x, auto& params) {
    const auto hidden =
        gelu_of_bf16_values(product_of_bf16_values(bf16_values(x), params["fc1.weight"], params["fc1.bias"]));
    return product_of_bf16_values(hidden, params["fc2.weight"], params["fc2.bias"]).to(torch::kBFloat16);
  });
  EXPECT_TRUE(torch::equal(fused.output, in_the_product.output));
  EXPECT_TRUE(torch::equal(fused.input_grad, in_the_product.input_grad));
  EXPECT_TRUE(torch::equal(fused.fc1_weight_grad, in_the_product.fc1_weight_grad));
  EXPECT_TRUE(torch::equal(fused.fc2_bias_grad, in_the_product.fc2_bias_grad));
  EXPECT_TRUE(torch::equal(fused.fc1_bias_grad, bf16_values(fused.fc1_bias_grad))) << "rounded to bf16";
  EXPECT_LE(vit::testing::relative_error(fused.fc1_bias_grad, in_the_product.fc1_bias_grad), 1.0 / 128)
      << "a bf16 unit at most";
}

// With the bias added in GELU the MLP is about as close to its float64 definition as its layers one
// by one. The pre-activation is rounded twice instead of once (the output's error 0.47 % against
// 0.42 % here), the bias not at all where autocast rounds it to bf16, and the bias's gradient is
// summed in fp32 and kept there where autocast rounds it (0.38 % against 0.40 %).
TEST(Bf16Gelu, MlpWithTheBiasInGeluIsAboutAsCloseToFloat64AsItsLayersUnfused) {
  const auto fused = run_mlp(Bf16Products::kOneDnn, 0.0, true, true, kLargeMlp);
  const auto unfused = run_unfused_layers(Bf16Products::kOneDnn, kLargeMlp);
  const auto exact = run_mlp_in_float64(kLargeMlp);
  ASSERT_EQ(fused.output.scalar_type(), torch::kBFloat16);
  const auto outputs = {
      std::tuple{"output", fused.output, unfused.output, exact.output},
      std::tuple{"input's gradient", fused.input_grad, unfused.input_grad, exact.input_grad},
      std::tuple{"fc1.weight's", fused.fc1_weight_grad, unfused.fc1_weight_grad, exact.fc1_weight_grad},
      std::tuple{"fc1.bias's", fused.fc1_bias_grad, unfused.fc1_bias_grad, exact.fc1_bias_grad},
      std::tuple{"fc2.bias's", fused.fc2_bias_grad, unfused.fc2_bias_grad, exact.fc2_bias_grad}};
  for (const auto& [name, ours, theirs, definition] : outputs) {
    const double our_error = vit::testing::relative_error(ours, definition);
    const double their_error = vit::testing::relative_error(theirs, definition);
    EXPECT_LE(our_error, their_error * 1.25) << name;
  }
  EXPECT_LE(vit::testing::relative_error(fused.fc1_bias_grad, exact.fc1_bias_grad),
            vit::testing::relative_error(unfused.fc1_bias_grad, exact.fc1_bias_grad));
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
