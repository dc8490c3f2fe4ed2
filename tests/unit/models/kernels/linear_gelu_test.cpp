#include "models/kernels/linear_gelu.h"

#include "app/train/autocast.h"
#include "models/layers/linear.h"
#include "models/layers/mlp.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <vector>

namespace vit::models {
namespace {

#define SKIP_WITHOUT_LINEAR_GELU()                                                               \
  if (!linear_gelu_applies(torch::zeros({256, 64}), torch::zeros({64, 64}), torch::zeros({64}))) \
  GTEST_SKIP() << "this CPU has no AVX-512: LibTorch's linear"

torch::Tensor exact_gelu(const torch::Tensor& x) { return 0.5 * x * torch::erfc(-x * M_SQRT1_2); }

struct LayerShape {
  int64_t rows, out, in;
};

// Shapes that reach every tile (6, 4, 2 and 1 rows), full and partial panels (64 columns; 1 to 4
// vectors, partial last vectors), inner sizes that are no multiple of 16 (the packing's tails),
// and row counts that split into several tasks.
const std::vector<LayerShape> kLayerShapes = {{7, 5, 3},      {13, 200, 33},  {197, 64, 64},
                                              {394, 130, 96}, {401, 384, 17}, {1, 17, 1}};

std::string layer_label(const LayerShape& s) {
  return std::to_string(s.rows) + "x" + std::to_string(s.out) + "x" + std::to_string(s.in);
}

// The layer's output against float64: the sums of k fp32 products in order, each rounding once, are
// within k units of 2^-24 of Σ|x·w| (+ the bias's rounding), which GELU's slope (< 1.13) carries
// over; then erf's approximation (< 1.5e-7 of Φ, times |x|) and GELU's own roundings.
TEST(LinearGelu, IsTheLayersInFloat64) {
  SKIP_WITHOUT_LINEAR_GELU();
  torch::manual_seed(3);
  for (const auto& shape : kLayerShapes) {
    const auto x = torch::randn({shape.rows, shape.in}) * 2;
    const auto w = torch::randn({shape.out, shape.in});
    const auto b = torch::randn({shape.out});
    const auto y = linear_gelu(x, w, b);
    const auto x64 = x.to(torch::kFloat64), w64 = w.to(torch::kFloat64), b64 = b.to(torch::kFloat64);
    const auto pre = torch::linear(x64, w64, b64);
    const auto exact = exact_gelu(pre);
    const auto magnitude = torch::linear(x64.abs(), w64.abs(), b64.abs());
    const auto bound = magnitude * (shape.in + 2) * std::ldexp(1.0, -24) * 1.2 + pre.abs() * 4e-7 + 1e-30;
    EXPECT_EQ(y.sizes(), exact.sizes()) << layer_label(shape);
    EXPECT_TRUE(((y.to(torch::kFloat64) - exact).abs() <= bound).all().item<bool>())
        << layer_label(shape) << ": max error " << (y.to(torch::kFloat64) - exact).abs().max().item<double>();
  }
}

// The gradients of input, weight and bias, GELU's derivative included, are those of the unfused
// layers computed in float64, to fp32 precision.
TEST(LinearGelu, GradientsAreTheUnfusedLayersInFloat64) {
  SKIP_WITHOUT_LINEAR_GELU();
  torch::manual_seed(4);
  for (const auto& shape : kLayerShapes) {
    const auto x = (torch::randn({shape.rows, shape.in}) * 2).requires_grad_();
    const auto w = torch::randn({shape.out, shape.in}).requires_grad_();
    const auto b = torch::randn({shape.out}).requires_grad_();
    const auto grad = torch::randn({shape.rows, shape.out});
    linear_gelu(x, w, b).backward(grad);

    const auto x64 = x.detach().to(torch::kFloat64).requires_grad_();
    const auto w64 = w.detach().to(torch::kFloat64).requires_grad_();
    const auto b64 = b.detach().to(torch::kFloat64).requires_grad_();
    exact_gelu(torch::linear(x64, w64, b64)).backward(grad.to(torch::kFloat64));
    for (const auto& [ours, exact, name] :
         {std::tuple{x.grad(), x64.grad(), "input"}, std::tuple{w.grad(), w64.grad(), "weight"},
          std::tuple{b.grad(), b64.grad(), "bias"}}) {
      const auto error = (ours.to(torch::kFloat64) - exact).abs().max().item<double>();
      EXPECT_LT(error, 2e-5 * (1.0 + exact.abs().max().item<double>())) << layer_label(shape) << ", " << name;
    }
  }
}

// GELU's hard places go through the kernel as LibTorch's GELU takes them: zeros, the tails where Φ
// or 1 − Φ is tiny, large values; the derivative there too.
TEST(LinearGelu, TakesGelusHardPlacesAsLibTorchDoes) {
  SKIP_WITHOUT_LINEAR_GELU();
  const std::vector<float> values = {0.0F,   -0.0F,  1e-30F, -1e-30F, -0.7F, 0.7F,   -3.0F, -5.0F, -8.5F,
                                     -12.0F, -20.0F, 6.0F,   13.0F,   40.0F, -40.0F, 1e4F,  -1e4F};
  const int64_t count = static_cast<int64_t>(values.size());
  // An identity layer hands the values to GELU as they are: x · I + 0.
  const auto x = torch::tensor(values).repeat({64, 1}).requires_grad_();
  const auto identity = torch::eye(count);
  const auto y = linear_gelu(x, identity, torch::zeros({count}));
  const auto expected = torch::gelu(x.detach());
  EXPECT_TRUE(torch::allclose(y, expected, 1e-6, 1e-30)) << y[0] << expected[0];
  y.backward(torch::ones_like(y));
  const auto x64 = x.detach().to(torch::kFloat64).requires_grad_();
  exact_gelu(x64).backward(torch::ones_like(x64));
  EXPECT_TRUE(torch::allclose(x.grad().to(torch::kFloat64), x64.grad(), 1e-6, 1e-6)) << x.grad()[0] << x64.grad()[0];
}

// Without a gradient to record (evaluation) the layer keeps no pre-activation and no node, and
// gives the same bits; one thread or two, the same bits (each output element is one sum, in order).
TEST(LinearGelu, SameBitsWithAndWithoutGradientsAndOnAnyThreadCount) {
  SKIP_WITHOUT_LINEAR_GELU();
  torch::manual_seed(5);
  const auto x = torch::randn({2, 197, 96});
  const auto w = torch::randn({384, 96}, torch::requires_grad());
  const auto b = torch::randn({384}, torch::requires_grad());
  const int threads = at::get_num_threads();
  const auto with_grad = linear_gelu(x, w, b);
  ASSERT_TRUE(with_grad.requires_grad());
  torch::Tensor without_grad;
  {
    const torch::NoGradGuard no_grad;
    without_grad = linear_gelu(x, w, b);
  }
  EXPECT_FALSE(without_grad.requires_grad());
  EXPECT_TRUE(torch::equal(with_grad, without_grad));
  at::set_num_threads(1);
  const auto one_thread = linear_gelu(x, w, b);
  at::set_num_threads(2);
  const auto two_threads = linear_gelu(x, w, b);
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(one_thread, two_threads));
  EXPECT_TRUE(torch::equal(one_thread, with_grad));
}

// A layer of any number of leading dimensions, a non-contiguous input, no bias.
TEST(LinearGelu, TakesAnyLeadingDimensionsNonContiguousInputsAndNoBias) {
  SKIP_WITHOUT_LINEAR_GELU();
  torch::manual_seed(6);
  const auto w = torch::randn({70, 48});
  const auto x4 = torch::randn({2, 7, 7, 48});
  const auto transposed = torch::randn({48, 150}).t();
  ASSERT_FALSE(transposed.is_contiguous());
  for (const auto& x : {x4, transposed}) {
    const auto y = linear_gelu(x, w, torch::Tensor());
    const auto expected = exact_gelu(torch::linear(x.to(torch::kFloat64), w.to(torch::kFloat64)));
    EXPECT_EQ(y.sizes(), expected.sizes());
    EXPECT_LT((y.to(torch::kFloat64) - expected).abs().max().item<double>(), 1e-4);
  }
}

TEST(LinearGelu, AppliesToFp32LayersOfSomeSizeOutsideAutocastAndTheTracer) {
  SKIP_WITHOUT_LINEAR_GELU();
  const auto x = torch::zeros({8, 197, 192});
  const auto w = torch::zeros({576, 192});
  const auto b = torch::zeros({576});
  EXPECT_TRUE(linear_gelu_applies(x, w, b));
  EXPECT_TRUE(linear_gelu_applies(x, w, torch::Tensor()));
  EXPECT_FALSE(linear_gelu_applies(x.to(torch::kBFloat16), w.to(torch::kBFloat16), b.to(torch::kBFloat16)));
  EXPECT_FALSE(linear_gelu_applies(torch::zeros({8, 10}), torch::zeros({10, 10}), torch::zeros({10})));     // small
  EXPECT_FALSE(linear_gelu_applies(torch::zeros({512, 5000}), torch::zeros({64, 5000}), torch::Tensor()));  // inner
  EXPECT_FALSE(linear_gelu_applies(x, w, torch::zeros({5})));
  {
    const app::AutocastGuard autocast(torch::kCPU, torch::kBFloat16, true);
    EXPECT_FALSE(linear_gelu_applies(x, w, b));
  }
}

// Whether y's autograd graph has a node whose name contains `name`.
bool graph_has_node(const torch::Tensor& y, const std::string& name) {
  std::vector<torch::autograd::Node*> open = {y.grad_fn().get()};
  while (!open.empty()) {
    auto* node = open.back();
    open.pop_back();
    if (node == nullptr) continue;
    if (node->name().find(name) != std::string::npos) return true;
    for (const auto& edge : node->next_edges()) open.push_back(edge.function.get());
  }
  return false;
}

// The MLP runs it in fp32 (its unfused layers where dropout stands between fc1 and GELU in
// training) and falls back to LibTorch's operators where the tracer records: an export holds
// LibTorch's operators only.
TEST(LinearGelu, MlpRunsItInFp32AndTracesLibTorchsOperators) {
  SKIP_WITHOUT_LINEAR_GELU();
  torch::manual_seed(7);
  Mlp mlp(MlpOptions{192, 768});
  const auto x = torch::randn({4, 197, 192});
  const auto named = mlp->named_parameters();
  const auto p64 = [&](const std::string& name) { return named[name].detach().to(torch::kFloat64); };
  const auto hidden = exact_gelu(torch::linear(x.to(torch::kFloat64), p64("fc1.weight"), p64("fc1.bias")));
  const auto expected = torch::linear(hidden, p64("fc2.weight"), p64("fc2.bias"));
  const auto y = mlp(x);
  EXPECT_LT((y.to(torch::kFloat64) - expected).abs().max().item<double>(), 1e-4);
  EXPECT_TRUE(graph_has_node(y, "LinearGelu"));

  Mlp with_dropout(MlpOptions{192, 768, 0.1});
  with_dropout->train();
  EXPECT_FALSE(graph_has_node(with_dropout(x), "LinearGelu"));
  EXPECT_TRUE(graph_has_node(with_dropout(x), "GeluBackward"));

  for (auto& parameter : mlp->parameters()) parameter.requires_grad_(false);  // traced as constants
  const auto traced = torch::jit::tracer::trace(
      {x}, [&](torch::jit::Stack inputs) -> torch::jit::Stack { return {mlp(inputs[0].toTensor())}; },
      [](const torch::autograd::Variable&) { return std::string(); }, false);
  const auto graph = traced.first->graph->toString();
  EXPECT_NE(graph.find("aten::gelu"), std::string::npos) << graph;
  EXPECT_EQ(graph.find("LinearGelu"), std::string::npos) << graph;
}

}  // namespace
}  // namespace vit::models
