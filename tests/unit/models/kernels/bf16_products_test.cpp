#include "models/kernels/bf16_products.h"

#include "app/train/autocast.h"
#include "models/kernels/batched_matmul.h"
#include "models/kernels/fused_attention.h"
#include "models/layers/attention.h"
#include "models/layers/linear.h"
#include "models/layers/mlp.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <iterator>
#include <limits>
#include <vector>

namespace vit::models {
namespace {

using vit::testing::ScopedBf16Products;

constexpr Bf16Products kBothProducts[] = {Bf16Products::kOneDnn, Bf16Products::kFp32Blas};

const char* name_of(Bf16Products products) {
  return products == Bf16Products::kOneDnn ? "oneDNN" : "fp32 BLAS kernels";
}

torch::Tensor as_bf16_values(const torch::Tensor& x) { return x.to(torch::kBFloat16).to(torch::kFloat64); }

// Whether `value` is `exact` rounded once to bf16, give or take fp32 sums: within half a bf16 unit
// in the last place of `exact` (2^-8 of it at most) plus what fp32 accumulation may add over
// `magnitude` (the same sum of absolute terms).
bool rounded_once(const torch::Tensor& value, const torch::Tensor& exact, const torch::Tensor& magnitude) {
  const auto error = (value.to(torch::kFloat64) - exact).abs();
  return (error <= exact.abs() * (1.0 / 256) + magnitude * 1e-6).all().item<bool>();
}

bool holds_bf16_values(const torch::Tensor& x) { return torch::equal(x.to(torch::kFloat64), as_bf16_values(x)); }

struct LinearCase {
  const char* name;
  std::vector<int64_t> input_sizes;
};

TEST(Bf16Products, LinearUnderAutocastRoundsOperandsResultAndGradientsOnceWhereverItMultiplies) {
  for (const auto& c : {LinearCase{"ViT tokens [B, N, C]", {4, 33, 96}}, LinearCase{"rows [M, C]", {50, 96}},
                        LinearCase{"Swin's maps [B, H, W, C]", {2, 7, 7, 96}}}) {
    for (const auto products : kBothProducts) {
      const ScopedBf16Products chosen(products);
      torch::manual_seed(21);
      const auto x = torch::randn(c.input_sizes).requires_grad_();
      const auto weight = torch::randn({80, 96}).mul(0.1).requires_grad_();
      const auto bias = torch::randn({80}).requires_grad_();
      torch::Tensor y;
      {
        const app::AutocastGuard autocast(torch::kCPU, torch::kBFloat16, true);
        y = linear(x, weight, bias);
      }
      ASSERT_EQ(y.scalar_type(), torch::kBFloat16) << c.name << ", " << name_of(products);
      const auto upstream = torch::randn(y.sizes()).to(torch::kBFloat16);
      (y.to(torch::kFloat32) * upstream.to(torch::kFloat32)).sum().backward();

      // Exact (float64) products of the bf16 values every path multiplies.
      const auto x64 = as_bf16_values(x).flatten(0, -2), w64 = as_bf16_values(weight);
      const auto g64 = upstream.to(torch::kFloat64).flatten(0, -2);
      const auto y64 = torch::addmm(as_bf16_values(bias), x64, w64.t());
      const auto label = std::string(c.name) + ", " + name_of(products);
      EXPECT_TRUE(rounded_once(y.flatten(0, -2), y64, x64.abs().mm(w64.abs().t()) + bias.abs())) << label;
      // Autocast casts x, the weight and the bias to bf16, so their gradients come back rounded.
      for (const auto* grad : {&x.grad(), &weight.grad(), &bias.grad()}) {
        EXPECT_EQ(grad->scalar_type(), torch::kFloat32) << label;
        EXPECT_TRUE(holds_bf16_values(*grad)) << label;
      }
      EXPECT_TRUE(rounded_once(x.grad().flatten(0, -2), g64.mm(w64), g64.abs().mm(w64.abs()))) << label;
      EXPECT_TRUE(rounded_once(weight.grad(), g64.t().mm(x64), g64.abs().t().mm(x64.abs()))) << label;
      EXPECT_TRUE(rounded_once(bias.grad(), g64.sum(0), g64.abs().sum(0))) << label;
    }
  }
}

TEST(Bf16Products, OnTheFp32KernelsLinearIsTheFp32ProductOfTheBf16ValuesRounded) {
  torch::manual_seed(22);
  const auto x = torch::randn({3, 40, 64}).to(torch::kBFloat16);
  const auto weight = torch::randn({48, 64}), bias = torch::randn({48});
  const auto values = [](const torch::Tensor& t) { return t.to(torch::kBFloat16).to(torch::kFloat32); };
  const auto expected = torch::linear(values(x), values(weight), values(bias)).to(torch::kBFloat16);
  torch::Tensor on_blas, on_onednn;
  {
    const app::AutocastGuard autocast(torch::kCPU, torch::kBFloat16, true);
    {
      const ScopedBf16Products chosen(Bf16Products::kFp32Blas);
      on_blas = linear(x, weight, bias);
    }
    on_onednn = linear(x, weight, bias);
  }
  EXPECT_TRUE(torch::equal(on_blas, expected));
  // Same values, other kernels: equal to within one rounding, not bit for bit.
  EXPECT_TRUE(torch::allclose(on_onednn.to(torch::kFloat32), expected.to(torch::kFloat32), 1.0 / 128, 1e-3));
}

// Attention's products as the layers hand them over: q·k^T and weights·v out of a fused qkv.
TEST(Bf16Products, BatchedMatmulRoundsTheProductAndGradientsOnceOnEitherKernels) {
  for (const auto products : kBothProducts) {
    const ScopedBf16Products chosen(products);
    torch::manual_seed(23);
    const auto qkv = torch::randn({2, 17, 3, 4, 8}).to(torch::kBFloat16).permute({2, 0, 3, 1, 4});
    const auto weights = torch::randn({2, 4, 17, 17}).softmax(-1).to(torch::kBFloat16);
    for (const auto& [a_values, b_values] : {std::pair{qkv[0], qkv[1].transpose(-2, -1)}, std::pair{weights, qkv[2]}}) {
      const auto a = a_values.detach().requires_grad_(), b = b_values.detach().requires_grad_();
      torch::Tensor product;
      {
        const app::AutocastGuard autocast(torch::kCPU, torch::kBFloat16, true);
        product = batched_matmul(a, b);
      }
      ASSERT_EQ(product.scalar_type(), torch::kBFloat16) << name_of(products);
      const auto upstream = torch::randn(product.sizes()).to(torch::kBFloat16);
      (product.to(torch::kFloat32) * upstream.to(torch::kFloat32)).sum().backward();

      const auto a64 = a.to(torch::kFloat64), b64 = b.to(torch::kFloat64), g64 = upstream.to(torch::kFloat64);
      EXPECT_TRUE(rounded_once(product, a64.matmul(b64), a64.abs().matmul(b64.abs()))) << name_of(products);
      EXPECT_EQ(a.grad().scalar_type(), torch::kBFloat16);
      EXPECT_TRUE(
          rounded_once(a.grad(), g64.matmul(b64.transpose(-2, -1)), g64.abs().matmul(b64.abs().transpose(-2, -1))))
          << name_of(products);
      EXPECT_TRUE(
          rounded_once(b.grad(), a64.transpose(-2, -1).matmul(g64), a64.abs().transpose(-2, -1).matmul(g64.abs())))
          << name_of(products);
    }
  }
}

// bf16_values of an fp32 tensor is one pass (AVX512-BF16, where the CPU has it) instead of the
// casts to bf16 and back: the same values, and the same gradient.
TEST(Bf16Products, Bf16ValuesOfFp32AreTheCastsToBf16AndBack) {
  torch::manual_seed(24);
  auto x = torch::randn({37, 29}) * 100;  // vectors of 16 and tails, in parallel tasks or not
  auto flat = x.view(-1);
  const float ties[] = {1.0F + 1.0F / 256,
                        1.0F + 3.0F / 256,
                        -2.0F - 1.0F / 128,
                        3.0e38F,
                        std::numeric_limits<float>::infinity(),
                        -std::numeric_limits<float>::infinity(),
                        0.0F,
                        -0.0F};
  for (size_t i = 0; i < std::size(ties); ++i) flat[static_cast<int64_t>(i * 11)] = ties[i];
  x.requires_grad_();
  const auto ours = bf16_values(x);
  const auto upstream = torch::randn(x.sizes()) * 100;
  ours.backward(upstream);
  const auto our_grad = x.grad().clone();
  x.mutable_grad().reset();
  const auto casts = x.to(torch::kBFloat16).to(torch::kFloat32);
  casts.backward(upstream);
  EXPECT_TRUE(torch::equal(ours, casts));
  EXPECT_TRUE(torch::equal(our_grad, x.grad()));
  // NaN stays NaN.
  EXPECT_TRUE(bf16_values(torch::full({20}, std::numeric_limits<float>::quiet_NaN())).isnan().all().item<bool>());
  // A layer without a bias passes its undefined bias through.
  EXPECT_FALSE(bf16_values(torch::Tensor()).defined());
}

// bf16_values_of_sum is the fp32 sum with a row bias rounded once: bf16_values of x + bias, for
// rows of vectors and tails, in parallel tasks or not.
TEST(Bf16Products, Bf16ValuesOfSumAreTheRoundedFp32Sum) {
  torch::manual_seed(27);
  for (const auto& sizes : {std::vector<int64_t>{37, 29}, std::vector<int64_t>{3, 400, 96}}) {
    const auto x = torch::randn(sizes) * 100;
    const auto bias = torch::randn({sizes.back()}) * 10;
    EXPECT_TRUE(torch::equal(bf16_values_of_sum(x, bias), bf16_values(x + bias))) << sizes.size() << " dims";
  }
  EXPECT_THROW(bf16_values_of_sum(torch::randn({4, 8}), torch::randn({7})), c10::Error);
  EXPECT_THROW(bf16_values_of_sum(torch::randn({4, 8}).to(torch::kBFloat16), torch::randn({8})), c10::Error);
}

// On the fp32 kernels, attention keeps qkv and the heads' output in fp32 between the products,
// rounded to bf16 values where the layers one by one (linear, the node, linear) cast them to bf16:
// the same values, bit for bit, forward and backward.
TEST(Bf16Products, AttentionBetweenProductsOnTheFp32KernelsIsItsLayersOneByOne) {
  const ScopedBf16Products chosen(Bf16Products::kFp32Blas);
  torch::manual_seed(25);
  Attention attention(AttentionOptions{48, 3, true});
  const auto x = torch::randn({2, 17, 48}).requires_grad_();
  const auto upstream = torch::randn({2, 17, 48});
  auto params = attention->named_parameters();
  const auto run = [&](bool whole) {
    for (auto& p : attention->parameters()) p.mutable_grad().reset();
    x.mutable_grad().reset();
    torch::Tensor y;
    {
      const app::AutocastGuard autocast(torch::kCPU, torch::kBFloat16, true);
      if (whole) {
        y = attention(x);
      } else {
        const auto qkv = linear(x, params["qkv.weight"], params["qkv.bias"]);
        const auto heads = fused_attention(qkv, 3, 1.0 / std::sqrt(16.0));
        y = linear(heads, params["proj.weight"], params["proj.bias"]);
      }
    }
    (y.to(torch::kFloat32) * upstream).sum().backward();
    return std::vector<torch::Tensor>{y, x.grad().clone(), params["qkv.weight"].grad().clone(),
                                      params["qkv.bias"].grad().clone(), params["proj.weight"].grad().clone()};
  };
  const auto whole = run(true), one_by_one = run(false);
  ASSERT_EQ(whole[0].scalar_type(), torch::kBFloat16);
  for (size_t i = 0; i < whole.size(); ++i) EXPECT_TRUE(torch::equal(whole[i], one_by_one[i])) << "output " << i;
}

// A LayerNorm's rows as bf16 values in fp32 (residual_layer_norm_to_bf16_values) go into the first
// product as they are: the output of forward, which rounds its input first, bit for bit; and the
// input's gradient left unrounded, forward's once rounded (the LayerNorm rounds it as it reads it).
TEST(Bf16Products, AttentionAndMlpTakeBf16ValuesAsTheyAre) {
  const ScopedBf16Products chosen(Bf16Products::kFp32Blas);
  torch::manual_seed(26);
  Attention attention(AttentionOptions{64, 2, true});
  Mlp mlp(MlpOptions{64, 128, 0.0});
  const auto values = torch::randn({2, 17, 64}).to(torch::kBFloat16).to(torch::kFloat32);
  const auto upstream = torch::randn({2, 17, 64});
  using Layer = std::function<torch::Tensor(const torch::Tensor&)>;
  const auto run = [&](const Layer& layer) {
    const auto x = values.clone().requires_grad_();
    torch::Tensor y;
    {
      const app::AutocastGuard autocast(torch::kCPU, torch::kBFloat16, true);
      y = layer(x);
    }
    (y.to(torch::kFloat32) * upstream).sum().backward();
    return std::pair{y, x.grad()};
  };
  const auto rounded = [](const torch::Tensor& t) { return t.to(torch::kBFloat16).to(torch::kFloat32); };
  const std::vector<std::pair<Layer, Layer>> layers = {
      {[&](const torch::Tensor& x) { return attention(x); },
       [&](const torch::Tensor& x) { return attention->forward_bf16_values(x); }},
      {[&](const torch::Tensor& x) { return mlp(x); },
       [&](const torch::Tensor& x) { return mlp->forward_bf16_values(x); }}};
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto [output, grad] = run(layers[i].first);
    const auto [values_output, values_grad] = run(layers[i].second);
    EXPECT_TRUE(torch::equal(output, values_output)) << "layer " << i;
    EXPECT_TRUE(torch::equal(grad, rounded(values_grad))) << "layer " << i;
    EXPECT_FALSE(torch::equal(values_grad, rounded(values_grad))) << "layer " << i << ": its input was rounded";
  }
}

TEST(Bf16Products, LibTorchsBf16ProductsUntilTheApplicationChooses) {
  EXPECT_EQ(bf16_products(), Bf16Products::kOneDnn);
  const auto x = torch::randn({8, 16});
  EXPECT_FALSE(bf16_products_on_blas(x));
  const ScopedBf16Products chosen(Bf16Products::kFp32Blas);
  EXPECT_TRUE(bf16_products_on_blas(x));
  // fp32 products outside autocast are LibTorch's own, whatever the choice.
  const auto weight = torch::randn({4, 16});
  EXPECT_TRUE(torch::equal(models::linear(x, weight, torch::Tensor()), torch::linear(x, weight)));
}

}  // namespace
}  // namespace vit::models
