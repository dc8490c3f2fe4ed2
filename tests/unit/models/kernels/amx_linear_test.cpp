#include "models/kernels/amx_linear.h"

#include "models/kernels/autocast_state.h"
#include "models/kernels/bf16_gelu.h"
#include "models/layers/linear.h"
#include "support/test_support.h"

#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <vector>

namespace vit::models {
namespace {

using vit::testing::relative_error;

class AmxLinear : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!amx_linear_applies(torch::zeros({1, 32}), torch::zeros({32, 32})))
      GTEST_SKIP() << "this CPU has no AMX tile units this process may use";
  }
};

// bf16 autocast on the CPU for a scope.
class Bf16Autocast {
 public:
  Bf16Autocast() {
    set_autocast_dtype(c10::kCPU, torch::kBFloat16);
    set_autocast_enabled(c10::kCPU, true);
  }
  ~Bf16Autocast() {
    set_autocast_enabled(c10::kCPU, false);
    at::autocast::clear_cache();
  }
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;
};

struct Sizes {
  int64_t rows, out_features, in_features;
};

// Rows from one to past a chunk of 256 (and a ViT-Ti/16 slice's 3,152), each operand the wider
// (the transposed one): the sums are fp32 sums of exact bf16 products, so they sit within fp32's
// rounding of float64's, where oneDNN's bf16 product rounds them to bf16.
TEST_F(AmxLinear, WeightGradientIsTheFp32SumOfTheBf16Products) {
  torch::manual_seed(31);
  for (const auto& s : {Sizes{1, 32, 32}, Sizes{31, 64, 96}, Sizes{33, 96, 64}, Sizes{257, 192, 768},
                        Sizes{3152, 768, 192}, Sizes{600, 576, 192}}) {
    const auto grad = torch::randn({s.rows, s.out_features}).to(torch::kBFloat16);
    const auto input = torch::randn({s.rows, s.in_features}).to(torch::kBFloat16);
    const auto exact = torch::mm(grad.to(torch::kFloat64).t(), input.to(torch::kFloat64));
    const auto tiles = amx_weight_gradient(grad, input);
    const auto where =
        std::to_string(s.rows) + " x " + std::to_string(s.out_features) + " x " + std::to_string(s.in_features);
    ASSERT_EQ(tiles.scalar_type(), torch::kFloat32) << where;
    ASSERT_EQ(tiles.sizes(), exact.sizes()) << where;
    EXPECT_LT(relative_error(tiles, exact), 1e-6) << where;
    EXPECT_GT(relative_error(torch::mm(grad.t(), input), exact), 1e-4) << where;  // bf16's rounding
  }
  // No rows: no chunk of sums, zeros.
  const auto no_rows = [](int64_t columns) { return torch::zeros({0, columns}, torch::kBFloat16); };
  EXPECT_TRUE(torch::equal(amx_weight_gradient(no_rows(32), no_rows(64)), torch::zeros({32, 64})));
  EXPECT_TRUE(torch::equal(amx_weight_gradient(no_rows(64), no_rows(32)), torch::zeros({64, 32})));
}

// Each sum is one thread's, in chunk order: the bits do not depend on the thread count.
TEST_F(AmxLinear, WeightGradientHasTheSameBitsOnEveryThreadCount) {
  torch::manual_seed(32);
  const auto grad = torch::randn({700, 256}).to(torch::kBFloat16);
  const auto input = torch::randn({700, 64}).to(torch::kBFloat16);
  const auto on_threads = [&](int threads) {
    const vit::testing::IntraOpThreads scope(threads);
    return amx_weight_gradient(grad, input);
  };
  EXPECT_TRUE(torch::equal(on_threads(1), on_threads(2)));
}

// The forward and input-gradient products against autocast's linear layer (oneDNN's bf16 products,
// which sum the same bf16 products in the same order and round once): the same bits for row counts
// from none to past the kernel's 32- and 16-row panels and its zero-padded tail, and for weights whose packed
// operand spans several column blocks (over 1 MiB: 1536 × 384 both ways); and within a bf16 unit
// of float64's products.
TEST_F(AmxLinear, ForwardAndInputGradientAreAutocastsBitsForEveryRowCount) {
  torch::manual_seed(35);
  for (const auto& s : {Sizes{0, 64, 96}, Sizes{1, 64, 96}, Sizes{15, 64, 96}, Sizes{16, 64, 96}, Sizes{17, 64, 96},
                        Sizes{31, 96, 64}, Sizes{32, 96, 64}, Sizes{33, 96, 64}, Sizes{48, 96, 64},
                        Sizes{3152, 768, 192}, Sizes{3152, 192, 768}, Sizes{100, 1536, 384}, Sizes{100, 384, 1536}}) {
    const auto where =
        std::to_string(s.rows) + " x " + std::to_string(s.out_features) + " x " + std::to_string(s.in_features);
    const auto values = torch::randn({s.rows, s.in_features});
    const auto weight_values = torch::randn({s.out_features, s.in_features}).mul(0.1);
    const auto bias = torch::randn({s.out_features});
    const auto upstream = torch::randn({s.rows, s.out_features}).to(torch::kBFloat16);
    const auto run = [&](bool on_tiles) {
      const auto x = values.clone().requires_grad_();
      const auto weight = weight_values.clone().requires_grad_();
      torch::Tensor out;
      {
        const Bf16Autocast autocast;
        out = on_tiles ? amx_linear(x, weight, bias) : torch::linear(x, weight, bias);
      }
      out.backward(upstream);
      return std::make_pair(out, x.grad());
    };
    const auto [tiles_out, tiles_grad] = run(true);
    const auto [autocast_out, autocast_grad] = run(false);
    EXPECT_TRUE(torch::equal(tiles_out, autocast_out)) << where;
    EXPECT_TRUE(torch::equal(tiles_grad, autocast_grad)) << where;
    const auto to64 = [](const torch::Tensor& t) { return t.to(torch::kBFloat16).to(torch::kFloat64); };
    const auto exact_out = torch::addmm(to64(bias), to64(values), to64(weight_values).t());
    const auto exact_grad = torch::mm(to64(upstream), to64(weight_values));
    const auto within_a_bf16_unit = [](const torch::Tensor& t, const torch::Tensor& exact) {
      return (t.to(torch::kFloat64) - exact).abs().le(exact.abs() * std::pow(2.0, -7) + 1e-5).all().item<bool>();
    };
    EXPECT_TRUE(within_a_bf16_unit(tiles_out, exact_out)) << where;
    EXPECT_TRUE(within_a_bf16_unit(tiles_grad, exact_grad)) << where;
  }
}

// Each output row is one thread's: the same bits on 1 and 2 threads, forward and input gradient.
TEST_F(AmxLinear, ForwardAndInputGradientHaveTheSameBitsOnEveryThreadCount) {
  torch::manual_seed(36);
  const auto values = torch::randn({700, 192});
  const auto weight_values = torch::randn({256, 192}).mul(0.1);
  const auto upstream = torch::randn({700, 256}).to(torch::kBFloat16);
  const auto on_threads = [&](int threads) {
    const vit::testing::IntraOpThreads scope(threads);
    const auto x = values.clone().requires_grad_();
    const auto weight = weight_values.clone().requires_grad_();
    torch::Tensor out;
    {
      const Bf16Autocast autocast;
      out = amx_linear(x, weight, torch::Tensor());
    }
    out.backward(upstream);
    return torch::cat({out.to(torch::kFloat32).flatten(), x.grad().flatten()});
  };
  EXPECT_TRUE(torch::equal(on_threads(1), on_threads(2)));
}

// Against autocast's own linear layer, the node as a whole: the same output and input gradient,
// bit for bit, the same bias gradient, and a weight gradient that is the same fp32 sums in another order, rounded to
// bf16 values and returned in the weight's fp32: a bf16 unit apart at most, and no further from float64's. Inputs of 2
// to 4 dimensions.
TEST_F(AmxLinear, IsAutocastsLinearLayerButForTheWeightGradientsSumOrder) {
  torch::manual_seed(33);
  for (const bool with_bias : {true, false}) {
    for (const auto& input_sizes :
         {std::vector<int64_t>{300, 96}, std::vector<int64_t>{4, 75, 96}, std::vector<int64_t>{2, 3, 50, 96}}) {
      const auto values = torch::randn(input_sizes);
      const auto weight_values = torch::randn({64, 96}).mul(0.1);
      const auto bias_values = torch::randn({64});
      const auto upstream = torch::randn({values.numel() / 96, 64}).to(torch::kBFloat16);
      struct Run {
        torch::Tensor out, grad_input, grad_weight, grad_bias;
      };
      const auto run = [&](bool on_tiles) {
        const auto x = values.clone().requires_grad_();
        const auto weight = weight_values.clone().requires_grad_();
        const auto bias = with_bias ? bias_values.clone().requires_grad_() : torch::Tensor();
        torch::Tensor out;
        {
          const Bf16Autocast autocast;
          out = on_tiles ? amx_linear(x, weight, bias) : torch::linear(x.flatten(0, -2), weight, bias);
        }
        (out.reshape({-1, 64}).to(torch::kFloat32) * upstream.to(torch::kFloat32)).sum().backward();
        return Run{out.reshape({-1, 64}), x.grad(), weight.grad(), with_bias ? bias.grad() : torch::Tensor()};
      };
      const auto tiles = run(true);
      const auto autocast = run(false);
      const auto where = std::string(with_bias ? "bias, " : "no bias, ") + std::to_string(input_sizes.size()) + "-D";
      EXPECT_EQ(tiles.out.scalar_type(), torch::kBFloat16) << where;
      EXPECT_TRUE(torch::equal(tiles.out, autocast.out)) << where;
      EXPECT_TRUE(torch::equal(tiles.grad_input, autocast.grad_input)) << where;
      if (with_bias) {
        EXPECT_TRUE(torch::equal(tiles.grad_bias, autocast.grad_bias)) << where;
      }
      ASSERT_EQ(tiles.grad_weight.scalar_type(), torch::kFloat32) << where;
      // bf16 values, as autocast's cast node returns them.
      EXPECT_TRUE(torch::equal(tiles.grad_weight, tiles.grad_weight.to(torch::kBFloat16).to(torch::kFloat32))) << where;
      // A bf16 unit, and fp32's rounding where the sums cancel.
      const auto tolerance = autocast.grad_weight.abs() * std::pow(2.0, -7) + 1e-3;
      EXPECT_TRUE((tiles.grad_weight - autocast.grad_weight).abs().le(tolerance).all().item<bool>()) << where;
      const auto exact = torch::mm(upstream.to(torch::kFloat64).t(),
                                   values.reshape({-1, 96}).to(torch::kBFloat16).to(torch::kFloat64));
      EXPECT_LE(relative_error(tiles.grad_weight, exact), relative_error(autocast.grad_weight, exact) * 1.05) << where;
    }
  }
}

// Linear's bf16 layers take the tiles' node where a backward follows, and only for weights both of
// whose sizes are multiples of 32; without one (evaluation), the tiles' forward product alone, with
// autocast's bits.
TEST_F(AmxLinear, IsWhatLinearLayersRunUnderBf16Autocast) {
  torch::manual_seed(34);
  const auto x = torch::randn({40, 64});
  const auto output_of = [&](int64_t out_features, bool grad_mode) {
    Linear linear(64, out_features);
    const torch::AutoGradMode mode(grad_mode);
    const Bf16Autocast autocast;
    return std::make_pair(linear(x), torch::linear(x, linear->weight, linear->bias));
  };
  const auto node_of = [&](int64_t out_features, bool grad_mode) {
    const auto y = output_of(out_features, grad_mode).first;
    return y.grad_fn() ? y.grad_fn()->name() : std::string("none");
  };
  EXPECT_NE(node_of(96, true).find("AmxLinear"), std::string::npos) << node_of(96, true);
  EXPECT_EQ(node_of(10, true).find("AmxLinear"), std::string::npos) << node_of(10, true);
  EXPECT_EQ(node_of(96, false), "none");
  const auto [layer, autocast] = output_of(96, false);
  EXPECT_EQ(layer.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(layer, autocast));
}

struct MlpRun {
  torch::Tensor out, grad_input, grad_fc1_weight, grad_fc1_bias, grad_fc2_weight, grad_fc2_bias, grad_pre_activation;
};

struct MlpSizes {
  int64_t rows, in_features, hidden_features, out_features;
};

// fc2(GELU(fc1(x))) under bf16 autocast on the MLP's node, or on its layers apart (autocast's linear
// layers with bf16_gelu's GELU between, the pre-activation's gradient kept), then a backward.
// fc1's bias holds bf16 values, so that the node's fp32 sum of it is autocast's sum of its bf16 cast.
MlpRun run_mlp(const MlpSizes& s, bool with_fc2_bias, bool on_tiles, uint64_t seed = 37) {
  torch::manual_seed(seed);
  const auto x = torch::randn({s.rows, s.in_features}).requires_grad_();
  const auto fc1_weight = torch::randn({s.hidden_features, s.in_features}).mul(0.1).requires_grad_();
  const auto fc1_bias = torch::randn({s.hidden_features}).to(torch::kBFloat16).to(torch::kFloat).requires_grad_();
  const auto fc2_weight = torch::randn({s.out_features, s.hidden_features}).mul(0.1).requires_grad_();
  const auto fc2_bias = with_fc2_bias ? torch::randn({s.out_features}).requires_grad_() : torch::Tensor();
  const auto upstream = torch::randn({s.rows, s.out_features}).to(torch::kBFloat16);
  torch::Tensor out, pre_activation;
  {
    const Bf16Autocast autocast;
    if (on_tiles) {
      out = amx_mlp(x, fc1_weight, fc1_bias, fc2_weight, fc2_bias);
    } else {
      pre_activation = torch::linear(x, fc1_weight, fc1_bias);
      pre_activation.retain_grad();
      out = torch::linear(gelu_of_bf16_values(pre_activation), fc2_weight, fc2_bias);
    }
  }
  out.backward(upstream);
  return {out,
          x.grad(),
          fc1_weight.grad(),
          fc1_bias.grad(),
          fc2_weight.grad(),
          with_fc2_bias ? fc2_bias.grad() : torch::Tensor(),
          on_tiles ? torch::Tensor() : pre_activation.grad()};
}

// The MLP's node against its layers apart: the same output and input gradient, bit for bit (GELU
// and its derivative applied to the same sums, rounded as the products alone round them), the same
// fc2 bias gradient; weight gradients a bf16 unit apart at most (AmxLinear's); fc1's bias gradient
// the fp32 sum of the same pre-activation gradient, within fp32's rounding of float64's sum, where
// autocast's is that sum rounded to bf16. Row counts past each panel size and the padded tail.
TEST_F(AmxLinear, MlpIsItsLayersApartButForTheGradientsSums) {
  for (const int64_t rows : {1, 17, 33, 700}) {
    for (const bool with_fc2_bias : {true, false}) {
      const MlpSizes sizes{rows, 64, 128, 96};
      const auto tiles = run_mlp(sizes, with_fc2_bias, true);
      const auto apart = run_mlp(sizes, with_fc2_bias, false);
      const auto where = std::to_string(rows) + (with_fc2_bias ? " rows, fc2 bias" : " rows, no fc2 bias");
      EXPECT_EQ(tiles.out.scalar_type(), torch::kBFloat16) << where;
      EXPECT_TRUE(torch::equal(tiles.out, apart.out)) << where;
      EXPECT_TRUE(torch::equal(tiles.grad_input, apart.grad_input)) << where;
      if (with_fc2_bias) {
        EXPECT_TRUE(torch::equal(tiles.grad_fc2_bias, apart.grad_fc2_bias)) << where;
      }
      for (const auto& [ours, theirs] : {std::pair{tiles.grad_fc1_weight, apart.grad_fc1_weight},
                                         std::pair{tiles.grad_fc2_weight, apart.grad_fc2_weight}}) {
        const auto tolerance = theirs.abs() * std::pow(2.0, -7) + 1e-3;
        EXPECT_TRUE((ours - theirs).abs().le(tolerance).all().item<bool>()) << where;
      }
      ASSERT_EQ(tiles.grad_fc1_bias.scalar_type(), torch::kFloat32) << where;
      const auto exact = apart.grad_pre_activation.to(torch::kFloat64).sum(0);
      EXPECT_LT(relative_error(tiles.grad_fc1_bias, exact), 1e-6) << where;
      EXPECT_LT(relative_error(apart.grad_fc1_bias, exact), std::pow(2.0, -8)) << where;
    }
  }
}

// Each output row is one thread's and fc1's bias gradient is summed panel by panel in order: the
// same bits on 1 and 2 threads.
TEST_F(AmxLinear, MlpHasTheSameBitsOnEveryThreadCount) {
  const auto on_threads = [](int threads) {
    const vit::testing::IntraOpThreads scope(threads);
    const auto run = run_mlp(MlpSizes{700, 96, 192, 64}, true, true);
    return torch::cat({run.out.to(torch::kFloat32).flatten(), run.grad_input.flatten(), run.grad_fc1_weight.flatten(),
                       run.grad_fc1_bias, run.grad_fc2_weight.flatten(), run.grad_fc2_bias});
  };
  EXPECT_TRUE(torch::equal(on_threads(1), on_threads(2)));
}

// Without a backward to follow (evaluation) the node's forward alone, with its bits; a 3-D input
// as its rows.
TEST_F(AmxLinear, MlpWithoutGradientsIsTheNodesForward) {
  torch::manual_seed(38);
  const auto x = torch::randn({4, 50, 64});
  const auto fc1_weight = torch::randn({128, 64}).mul(0.1).requires_grad_();
  const auto fc1_bias = torch::randn({128}).requires_grad_();
  const auto fc2_weight = torch::randn({64, 128}).mul(0.1).requires_grad_();
  const auto fc2_bias = torch::randn({64}).requires_grad_();
  const auto output = [&](bool grad_mode) {
    const torch::AutoGradMode mode(grad_mode);
    const Bf16Autocast autocast;
    return amx_mlp(x, fc1_weight, fc1_bias, fc2_weight, fc2_bias);
  };
  const auto recorded = output(true), evaluated = output(false);
  ASSERT_NE(recorded.grad_fn(), nullptr);  // the view of the node's rows
  ASSERT_FALSE(recorded.grad_fn()->next_edges().empty());
  EXPECT_NE(recorded.grad_fn()->next_edges()[0].function->name().find("AmxMlp"), std::string::npos);
  EXPECT_EQ(evaluated.grad_fn(), nullptr);
  EXPECT_EQ(evaluated.sizes(), torch::IntArrayRef({4, 50, 64}));
  EXPECT_TRUE(torch::equal(recorded, evaluated));
}

}  // namespace
}  // namespace vit::models
