#include "models/kernels/residual_layer_norm.h"

#include "models/kernels/autocast_state.h"
#include "models/layers/block.h"
#include "support/test_support.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

namespace vit::models {
namespace {

// Row lengths around the 8-float vectors: shorter than one, whole vectors, and tails.
const int64_t kNormRowLengths[] = {1, 3, 8, 13, 64, 192, 197};

using vit::testing::IntraOpThreads;

bool kernel_ran(const NormalizedSum& outputs) {
  return outputs.sum.grad_fn() != nullptr &&
         outputs.sum.grad_fn()->name().find("ResidualLayerNorm") != std::string::npos;
}

struct Inputs {
  torch::Tensor residual, branch, weight, bias;

  static Inputs random(int64_t rows, int64_t d, torch::ScalarType branch_dtype, torch::ScalarType dtype) {
    return {(3.0 * torch::randn({rows, d}) + 1.0).to(dtype), torch::randn({rows, d}).to(branch_dtype),
            (1.0 + 0.5 * torch::randn({d})).to(dtype), (0.2 * torch::randn({d})).to(dtype)};
  }
  Inputs leaves() const {
    return {residual.clone().requires_grad_(), branch.clone().requires_grad_(), weight.clone().requires_grad_(),
            bias.clone().requires_grad_()};
  }
  std::vector<torch::Tensor> grads() const { return {residual.grad(), branch.grad(), weight.grad(), bias.grad()}; }
};

// The definition in float64: the sum (residual + (branch + branch_bias), the bias where given),
// LayerNorm of it, and the four gradients from both outputs' (and the branch bias's, fifth).
struct Reference {
  torch::Tensor sum, normalized;
  std::vector<torch::Tensor> grads;
};

Reference reference(const Inputs& in, const torch::Tensor& grad_sum, const torch::Tensor& grad_normalized, double eps,
                    const torch::Tensor& branch_bias = {}) {
  const auto to64 = [](const torch::Tensor& t) { return t.detach().to(torch::kFloat64).requires_grad_(); };
  const Inputs exact{to64(in.residual), to64(in.branch), to64(in.weight), to64(in.bias)};
  const auto exact_bias = branch_bias.defined() ? to64(branch_bias) : torch::Tensor();
  const auto sum = exact.residual + (exact_bias.defined() ? exact.branch + exact_bias : exact.branch);
  const auto normalized = at::layer_norm(sum, {sum.size(-1)}, exact.weight, exact.bias, eps);
  torch::Tensor loss = torch::zeros({}, torch::kFloat64);
  if (grad_sum.defined()) loss = loss + (sum * grad_sum.to(torch::kFloat64)).sum();
  if (grad_normalized.defined()) loss = loss + (normalized * grad_normalized.to(torch::kFloat64)).sum();
  loss.backward();
  auto grads = exact.grads();
  if (exact_bias.defined()) grads.push_back(exact_bias.grad());
  return {sum.detach(), normalized.detach(), grads};
}

void backward(const NormalizedSum& outputs, const torch::Tensor& grad_sum, const torch::Tensor& grad_normalized) {
  std::vector<torch::Tensor> roots, grads;
  if (grad_sum.defined()) roots.push_back(outputs.sum), grads.push_back(grad_sum);
  if (grad_normalized.defined()) roots.push_back(outputs.normalized), grads.push_back(grad_normalized);
  torch::autograd::backward(roots, grads);
}

bool close(const torch::Tensor& actual, const torch::Tensor& expected, double rtol, double atol) {
  return torch::allclose(actual.to(torch::kFloat64), expected, rtol, atol);
}

TEST(ResidualLayerNorm, Fp32EqualsTheFloat64DefinitionAndItsGradients) {
  const IntraOpThreads one_thread(1);
  torch::manual_seed(31);
  for (const int64_t d : kNormRowLengths) {
    const auto in = Inputs::random(21, d, torch::kFloat32, torch::kFloat32).leaves();
    const auto outputs = residual_layer_norm(in.residual, in.branch, in.weight, in.bias, 1e-6, torch::kFloat32);
    if (at::get_num_threads() == 1 && __builtin_cpu_supports("avx2")) {
      EXPECT_TRUE(kernel_ran(outputs)) << "d " << d;
    }
    const auto grad_sum = torch::randn({21, d}), grad_normalized = torch::randn({21, d});
    backward(outputs, grad_sum, grad_normalized);
    const auto expected = reference(in, grad_sum, grad_normalized, 1e-6);
    ASSERT_EQ(outputs.normalized.scalar_type(), torch::kFloat32);
    EXPECT_TRUE(torch::equal(outputs.sum, in.residual.detach() + in.branch.detach())) << "d " << d;
    EXPECT_TRUE(close(outputs.normalized, expected.normalized, 1e-5, 1e-5)) << "d " << d;
    const auto grads = in.grads();
    for (size_t i = 0; i < grads.size(); ++i) {
      ASSERT_TRUE(grads[i].defined());
      EXPECT_TRUE(close(grads[i], expected.grads[i], 1e-4, 1e-4)) << "d " << d << " input " << i;
    }
  }
}

TEST(ResidualLayerNorm, Bf16BranchAndOutputAreRoundedOnceFromFp32) {
  const IntraOpThreads one_thread(1);
  torch::manual_seed(32);
  for (const int64_t d : kNormRowLengths) {
    const auto in = Inputs::random(17, d, torch::kBFloat16, torch::kFloat32).leaves();
    const auto outputs = residual_layer_norm(in.residual, in.branch, in.weight, in.bias, 1e-6, torch::kBFloat16);
    ASSERT_EQ(outputs.sum.scalar_type(), torch::kFloat32);
    ASSERT_EQ(outputs.normalized.scalar_type(), torch::kBFloat16);
    const auto grad_sum = torch::randn({17, d}), grad_normalized = torch::randn({17, d}).to(torch::kBFloat16);
    backward(outputs, grad_sum, grad_normalized);
    const auto expected = reference(in, grad_sum, grad_normalized, 1e-6);
    // The bf16 branch converts to fp32 exactly: the sum is LibTorch's fp32 + bf16 bit for bit.
    EXPECT_TRUE(torch::equal(outputs.sum, in.residual.detach() + in.branch.detach())) << "d " << d;
    EXPECT_TRUE(close(outputs.normalized, expected.normalized, 1.0 / 256, 1e-3)) << "d " << d;
    const auto grads = in.grads();
    ASSERT_EQ(grads[1].scalar_type(), torch::kBFloat16);
    EXPECT_TRUE(close(grads[0], expected.grads[0], 1e-4, 1e-4)) << "d " << d;
    // The branch's gradient is the residual's, rounded once.
    EXPECT_TRUE(torch::equal(grads[1], grads[0].to(torch::kBFloat16))) << "d " << d;
    EXPECT_TRUE(close(grads[2], expected.grads[2], 1e-4, 1e-4)) << "d " << d;
    EXPECT_TRUE(close(grads[3], expected.grads[3], 1e-4, 1e-4)) << "d " << d;
  }
}

// For products on the fp32 kernels: the bf16 rows widened to fp32 and the widening's backward (its
// fp32 gradient rounded to bf16), bit for bit where rows are whole vectors of 8 (every model's
// width), with an fp32 or a bf16 branch. A row's scalar tail is compiled per dtype, and GCC fuses
// its multiply-adds differently in each: there the gradients agree to fp32 rounding.
TEST(ResidualLayerNorm, ToBf16ValuesIsTheBf16RowsWidened) {
  const IntraOpThreads one_thread(1);
  torch::manual_seed(34);
  for (const auto branch_dtype : {torch::kFloat32, torch::kBFloat16}) {
    for (const int64_t d : kNormRowLengths) {
      const auto label = ::testing::Message() << "d " << d << ", branch " << branch_dtype;
      const auto values = Inputs::random(17, d, branch_dtype, torch::kFloat32);
      const auto grad_sum = torch::randn({17, d}), grad_normalized = torch::randn({17, d});
      const auto in = values.leaves();
      const auto outputs = residual_layer_norm_to_bf16_values(in.residual, in.branch, in.weight, in.bias, 1e-6);
      ASSERT_TRUE(kernel_ran(outputs)) << label;
      ASSERT_EQ(outputs.normalized.scalar_type(), torch::kFloat32);
      backward(outputs, grad_sum, grad_normalized);
      const auto widened_in = values.leaves();
      auto widened = residual_layer_norm(widened_in.residual, widened_in.branch, widened_in.weight, widened_in.bias,
                                         1e-6, torch::kBFloat16);
      widened.normalized = widened.normalized.to(torch::kFloat32);
      backward(widened, grad_sum, grad_normalized);
      EXPECT_TRUE(torch::equal(outputs.sum, widened.sum)) << label;
      EXPECT_TRUE(torch::equal(outputs.normalized, widened.normalized)) << label;
      const auto grads = in.grads(), widened_grads = widened_in.grads();
      for (size_t i = 0; i < grads.size(); ++i) {
        if (d % 8 == 0) {
          EXPECT_TRUE(torch::equal(grads[i], widened_grads[i])) << label << ", gradient " << i;
        } else {
          EXPECT_TRUE(torch::allclose(grads[i], widened_grads[i], 1e-6, 1e-7)) << label << ", gradient " << i;
        }
      }
    }
  }
}

// A branch that is an fp32 product which bf16 autocast would cast to bf16 (branch_bf16_values): the
// sum, the normalized rows and every gradient that the cast branch gives, the branch's gradient as
// the cast's backward returns it — on the kernel (one thread, rows in fp32 or as bf16 values) bit
// for bit where rows are whole vectors of 8 (a scalar tail is compiled per branch type: fp32
// rounding there), and on LibTorch's operators (two threads) bit for bit.
TEST(ResidualLayerNorm, ABranchOfBf16ValuesIsItsCastToBf16) {
  torch::manual_seed(41);
  for (const int threads : {1, 2}) {
    const IntraOpThreads intra_op(threads);
    for (const bool to_bf16_values : {false, true}) {
      for (const int64_t d : kNormRowLengths) {
        const auto label = ::testing::Message()
                           << threads << " threads, d " << d << ", to bf16 values " << to_bf16_values;
        const auto values = Inputs::random(17, d, torch::kFloat32, torch::kFloat32);
        const auto grad_sum = torch::randn({17, d}), grad_normalized = torch::randn({17, d});
        const auto run = [&](bool cast) {
          const auto in = values.leaves();
          const auto branch =
              cast ? ResidualBranch(in.branch.to(torch::kBFloat16)) : ResidualBranch::of_bf16_values(in.branch);
          const auto outputs =
              to_bf16_values ? residual_layer_norm_to_bf16_values(in.residual, branch, in.weight, in.bias, 1e-6)
                             : residual_layer_norm(in.residual, branch, in.weight, in.bias, 1e-6, torch::kFloat32);
          backward(outputs, grad_sum, grad_normalized);
          return std::pair{outputs, in.grads()};
        };
        const auto [left, left_grads] = run(false);
        const auto [cast, cast_grads] = run(true);
        EXPECT_EQ(kernel_ran(left), threads == 1 && __builtin_cpu_supports("avx2") != 0) << label;
        EXPECT_TRUE(torch::equal(left.sum, cast.sum)) << label;
        EXPECT_TRUE(torch::equal(left.normalized, cast.normalized)) << label;
        for (size_t i = 0; i < left_grads.size(); ++i) {
          if (d % 8 == 0 || threads > 1) {
            EXPECT_TRUE(torch::equal(left_grads[i], cast_grads[i])) << label << ", gradient " << i;
          } else {
            EXPECT_TRUE(torch::allclose(left_grads[i], cast_grads[i], 1e-6, 1e-7)) << label << ", gradient " << i;
          }
        }
        const auto branch_grad = left_grads[1];
        EXPECT_TRUE(torch::equal(branch_grad, branch_grad.to(torch::kBFloat16).to(torch::kFloat32)))
            << label << ": the branch's gradient is rounded to bf16";
      }
    }
  }
}

// A linear layer's bias left to the pass: sum = residual + (branch + bias) as LibTorch's fp32 adds
// give it, bit for bit, and the bias's gradient the sum of the branch's, against float64.
TEST(ResidualLayerNorm, AddsTheBranchsBiasAndSumsItsGradient) {
  const IntraOpThreads one_thread(1);
  torch::manual_seed(37);
  for (const auto branch_dtype : {torch::kFloat32, torch::kBFloat16}) {
    for (const int64_t d : kNormRowLengths) {
      const auto label = ::testing::Message() << "d " << d << ", branch " << branch_dtype;
      const auto in = Inputs::random(19, d, branch_dtype, torch::kFloat32).leaves();
      const auto branch_bias = (0.5 * torch::randn({d})).requires_grad_();
      const auto outputs = residual_layer_norm(in.residual, ResidualBranch::with_bias(in.branch, branch_bias),
                                               in.weight, in.bias, 1e-6, branch_dtype);
      if (__builtin_cpu_supports("avx2")) {
        EXPECT_TRUE(kernel_ran(outputs)) << label;
      }
      const auto grad_sum = torch::randn({19, d}), grad_normalized = torch::randn({19, d}).to(branch_dtype);
      backward(outputs, grad_sum, grad_normalized);
      EXPECT_TRUE(torch::equal(outputs.sum, in.residual.detach() + (in.branch.detach() + branch_bias.detach())))
          << label;

      const auto expected = reference(in, grad_sum, grad_normalized, 1e-6, branch_bias);
      const double tolerance = branch_dtype == torch::kFloat32 ? 1e-5 : 1.0 / 256;
      EXPECT_TRUE(close(outputs.normalized, expected.normalized, tolerance, 1e-3)) << label;
      EXPECT_TRUE(close(in.residual.grad(), expected.grads[0], 1e-4, 1e-4)) << label;
      ASSERT_TRUE(branch_bias.grad().defined()) << label;
      EXPECT_EQ(branch_bias.grad().scalar_type(), torch::kFloat32);
      EXPECT_TRUE(close(branch_bias.grad(), expected.grads[4], 1e-4, 1e-4)) << label;
      // The bias's gradient is the residual's summed over the rows (in fp32, row after row).
      EXPECT_TRUE(torch::allclose(branch_bias.grad(), in.residual.grad().sum(0), 1e-5, 1e-5)) << label;
    }
  }
}

// Stochastic depth's factors applied in the pass (one per sample of 3 rows; 0 drops a sample): the
// sum, the normalized rows and the gradients are those of the branch multiplied by its factors in
// its dtype first (LibTorch's multiply, then a plain branch into the kernel) — bit for bit where
// rows are whole vectors of 8 (a scalar tail is compiled per branch type) — for an fp32 branch with
// its bias, a bf16 branch and an fp32 product read as bf16 values; the bias's gradient (summed in
// another order) close. Without the kernel (two threads) the same formula in LibTorch's operators.
TEST(ResidualLayerNorm, ScalesEachSamplesBranchByItsFactorInTheBranchsDtype) {
  torch::manual_seed(43);
  enum class Kind { kFp32WithBias, kBf16, kBf16Values };
  const int64_t samples = 4, tokens = 3;
  for (const int threads : {1, 2}) {
    const IntraOpThreads intra_op(threads);
    for (const auto kind : {Kind::kFp32WithBias, Kind::kBf16, Kind::kBf16Values}) {
      for (const int64_t d : kNormRowLengths) {
        const auto label = ::testing::Message()
                           << threads << " threads, d " << d << ", kind " << static_cast<int>(kind);
        const auto branch_dtype = kind == Kind::kBf16 ? torch::kBFloat16 : torch::kFloat32;
        const auto factor_dtype = kind == Kind::kFp32WithBias ? torch::kFloat32 : torch::kBFloat16;
        const auto values = Inputs::random(samples * tokens, d, branch_dtype, torch::kFloat32);
        const auto branch_bias = kind == Kind::kFp32WithBias ? 0.5 * torch::randn({d}) : torch::Tensor();
        const auto factors = (torch::tensor({0.0, 1.0, 1.0, 0.0}) / 0.9).to(factor_dtype).view({samples, 1, 1});
        const auto grad_sum = torch::randn({samples, tokens, d});
        const auto grad_normalized = torch::randn({samples, tokens, d});
        const auto run = [&](bool in_pass) {
          const auto in = values.leaves();
          const auto residual = in.residual.view({samples, tokens, d}), branch = in.branch.view({samples, tokens, d});
          const auto bias = branch_bias.defined() ? branch_bias.clone().requires_grad_() : torch::Tensor();
          ResidualBranch added;
          if (in_pass) {
            added = kind == Kind::kBf16Values     ? ResidualBranch::of_bf16_values(branch)
                    : kind == Kind::kFp32WithBias ? ResidualBranch::with_bias(branch, bias)
                                                  : ResidualBranch(branch);
            added = added.times(factors);
          } else {
            const auto term = kind == Kind::kBf16Values     ? branch.to(torch::kBFloat16)
                              : kind == Kind::kFp32WithBias ? branch + bias
                                                            : branch;
            added = ResidualBranch(term * factors);
          }
          const auto outputs = residual_layer_norm(residual, added, in.weight, in.bias, 1e-6, torch::kFloat32);
          EXPECT_EQ(kernel_ran(outputs), threads == 1 && __builtin_cpu_supports("avx2") != 0) << label;
          backward(outputs, grad_sum, grad_normalized);
          auto grads = in.grads();
          if (bias.defined()) grads.push_back(bias.grad());
          return std::pair{outputs, grads};
        };
        const auto [in_pass, in_pass_grads] = run(true);
        const auto [multiplied, multiplied_grads] = run(false);
        EXPECT_TRUE(torch::equal(in_pass.sum, multiplied.sum)) << label;
        EXPECT_TRUE(torch::equal(in_pass.normalized, multiplied.normalized)) << label;
        for (size_t i = 0; i < in_pass_grads.size(); ++i) {
          if ((d % 8 == 0 || threads > 1) && i < 4) {
            EXPECT_TRUE(torch::equal(in_pass_grads[i], multiplied_grads[i])) << label << ", gradient " << i;
          } else {
            EXPECT_TRUE(torch::allclose(in_pass_grads[i], multiplied_grads[i], 1e-5, 1e-6))
                << label << ", gradient " << i;
          }
        }
        const auto branch_grad = in_pass_grads[1].view({samples, tokens, d});
        EXPECT_EQ(branch_grad[0].abs().max().item<float>(), 0.0F) << label << ": a dropped sample";
        EXPECT_GT(branch_grad[1].abs().max().item<float>(), 0.0F) << label;
      }
    }
  }
}

// Without the kernel (two threads), the bias goes into LibTorch's adds: the same sum.
TEST(ResidualLayerNorm, ElsewhereTheBranchsBiasIsLibTorchsAdd) {
  torch::manual_seed(38);
  const auto in = Inputs::random(6, 40, torch::kBFloat16, torch::kFloat32);
  const auto branch_bias = torch::randn({40});
  const IntraOpThreads two_threads(2);
  const auto outputs =
      residual_layer_norm(in.residual.requires_grad_(), ResidualBranch::with_bias(in.branch, branch_bias), in.weight,
                          in.bias, 1e-6, torch::kFloat32);
  EXPECT_FALSE(kernel_ran(outputs));
  const auto expected_sum = in.residual + (in.branch + branch_bias);
  EXPECT_TRUE(torch::equal(outputs.sum, expected_sum));
  EXPECT_TRUE(torch::allclose(outputs.normalized, at::layer_norm(expected_sum, {40}, in.weight, in.bias, 1e-6)));
}

TEST(ResidualLayerNorm, AnOutputNothingReadsContributesNoGradient) {
  const IntraOpThreads one_thread(1);
  torch::manual_seed(33);
  const auto grad = torch::randn({9, 24});
  for (const bool only_sum : {true, false}) {
    const auto in = Inputs::random(9, 24, torch::kFloat32, torch::kFloat32).leaves();
    const auto outputs = residual_layer_norm(in.residual, in.branch, in.weight, in.bias, 1e-5, torch::kFloat32);
    const torch::Tensor grad_sum = only_sum ? grad : torch::Tensor();
    const torch::Tensor grad_normalized = only_sum ? torch::Tensor() : grad;
    backward(outputs, grad_sum, grad_normalized);
    const auto expected = reference(in, grad_sum, grad_normalized, 1e-5);
    const auto grads = in.grads();
    EXPECT_TRUE(close(grads[0], expected.grads[0], 1e-4, 1e-5)) << "only sum " << only_sum;
    EXPECT_TRUE(close(grads[1], expected.grads[1], 1e-4, 1e-5)) << "only sum " << only_sum;
    if (only_sum) {
      EXPECT_TRUE(torch::equal(grads[0], grad));
      EXPECT_TRUE(torch::equal(grads[2], torch::zeros({24})));
    }
  }
}

TEST(ResidualLayerNorm, ElsewhereIsLibTorchsAddAndLayerNormInTheAskedDtype) {
  torch::manual_seed(34);
  const auto in = Inputs::random(6, 40, torch::kFloat32, torch::kFloat32);
  const auto expected_sum = in.residual + in.branch;
  const auto expected = at::layer_norm(expected_sum, {40}, in.weight, in.bias, 1e-6);
  const auto check = [&](const NormalizedSum& outputs, const std::string& what) {
    EXPECT_FALSE(kernel_ran(outputs)) << what;
    EXPECT_TRUE(torch::equal(outputs.sum, expected_sum)) << what;
    EXPECT_TRUE(torch::allclose(outputs.normalized.to(torch::kFloat32), expected, 1.0 / 128, 1e-2)) << what;
  };
  {
    const IntraOpThreads two_threads(2);
    const auto whole_batch =
        residual_layer_norm(in.residual.requires_grad_(), in.branch, in.weight, in.bias, 1e-6, torch::kBFloat16);
    EXPECT_EQ(whole_batch.normalized.scalar_type(), torch::kBFloat16);
    check(whole_batch, "two threads");
  }
  const IntraOpThreads one_thread(1);
  const auto strided = torch::randn({40, 6}).t();
  const auto transposed = residual_layer_norm(in.residual, strided, in.weight, in.bias, 1e-6, torch::kFloat32);
  EXPECT_FALSE(kernel_ran(transposed));
  EXPECT_TRUE(torch::equal(transposed.sum, in.residual + strided));
  const auto doubles =
      residual_layer_norm(in.residual.detach().to(torch::kFloat64), in.branch.to(torch::kFloat64),
                          in.weight.to(torch::kFloat64), in.bias.to(torch::kFloat64), 1e-6, torch::kFloat64);
  EXPECT_TRUE(close(doubles.normalized, expected.to(torch::kFloat64), 1e-5, 1e-5));
}

// The blocks and the final norm on x, under bf16 autocast or not: on the residual stream with one
// thread (the kernel), or block by block on two threads (LibTorch's operators).
torch::Tensor run_blocks(std::vector<Block>& blocks, torch::nn::LayerNorm& final_norm, const torch::Tensor& x,
                         bool bf16, bool fused) {
  set_autocast_enabled(c10::kCPU, bf16);
  set_autocast_dtype(c10::kCPU, torch::kBFloat16);
  torch::Tensor out;
  if (fused) {
    const IntraOpThreads one_thread(1);
    out = forward_blocks(blocks, x, final_norm);
  } else {
    const IntraOpThreads two_threads(2);
    out = x;
    for (auto& block : blocks) out = block(out);
    out = final_norm(out);
  }
  set_autocast_enabled(c10::kCPU, false);
  return out;
}

std::vector<torch::Tensor> parameter_gradients(std::vector<Block>& blocks) {
  std::vector<torch::Tensor> grads;
  for (auto& block : blocks) {
    for (const auto& p : block->parameters()) grads.push_back(p.grad().clone());
  }
  return grads;
}

// A stack of blocks on the residual stream (each add fused with the next LayerNorm) against the
// same blocks one by one with LibTorch's operators: same outputs and parameter gradients, in fp32
// and under bf16 autocast.
TEST(ResidualLayerNorm, BlocksOnTheStreamMatchTheBlocksOneByOne) {
  torch::manual_seed(35);
  std::vector<Block> blocks;
  for (int i = 0; i < 3; ++i) blocks.emplace_back(BlockOptions{48, 4, 2.0});
  auto final_norm = vit_layer_norm(48);
  const auto x = torch::randn({5, 9, 48});
  // Not out.pow(2).sum(): a LayerNorm's squares sum to a constant, and their gradient to rounding noise.
  const auto projection = torch::randn({5, 9, 48});
  const auto run = [&](bool fused, bool bf16) {
    for (auto& block : blocks) block->zero_grad();
    const auto out = run_blocks(blocks, final_norm, x, bf16, fused);
    (out * projection).sum().backward();
    std::vector<torch::Tensor> results{out.detach()};
    for (auto& grad : parameter_gradients(blocks)) results.push_back(grad);
    return results;
  };
  for (const bool bf16 : {false, true}) {
    const auto fused = run(true, bf16), unfused = run(false, bf16);
    const double tolerance = bf16 ? 2e-2 : 1e-4;
    ASSERT_EQ(fused.size(), unfused.size());
    for (size_t i = 0; i < fused.size(); ++i) {
      const double scale = unfused[i].abs().max().item<double>();
      EXPECT_LE((fused[i] - unfused[i]).abs().max().item<double>(), tolerance * scale)
          << "bf16 " << bf16 << " tensor " << i;
    }
  }
}

torch::Tensor parameter(torch::nn::Module& module, const std::string& name) { return module.named_parameters()[name]; }

// A block leaves the bias of each branch's last linear layer to the LayerNorm pass that adds the
// branch to the stream where that pass is the kernel and the branch goes in unscaled.
TEST(ResidualLayerNorm, BlocksLeaveTheirBranchesLastBiasToTheNextPass) {
  torch::manual_seed(39);
  const auto x = torch::randn({3, 7, 32});
  const auto pending = [&](Block& block, int threads) {
    const IntraOpThreads intra_op(threads);
    return block->forward_stream({x, {}}).pending;
  };
  const auto pending_bias = [&](Block& block, int threads) { return pending(block, threads).bias; };
  Block plain(BlockOptions{32, 4, 2.0});
  const auto left = pending_bias(plain, 1);
  ASSERT_EQ(left.defined(), __builtin_cpu_supports("avx2") != 0);
  if (left.defined()) {
    EXPECT_TRUE(left.is_same(parameter(*plain, "mlp.fc2.bias")));
  }
  EXPECT_FALSE(pending_bias(plain, 2).defined()) << "LibTorch's operators add it in the product";

  BlockOptions scaled_options{32, 4, 2.0};
  scaled_options.layer_scale_init = 1e-5;
  Block scaled(scaled_options);
  EXPECT_FALSE(pending_bias(scaled, 1).defined()) << "LayerScale scales the bias too";

  BlockOptions stochastic_options{32, 4, 2.0};
  stochastic_options.drop_path = 0.1;
  Block stochastic(stochastic_options);
  const auto stochastic_branch = pending(stochastic, 1);
  EXPECT_EQ(stochastic_branch.bias.defined(), left.defined()) << "stochastic depth's factors go to the pass too";
  EXPECT_EQ(stochastic_branch.factors.defined(), left.defined());
  stochastic->eval();
  EXPECT_EQ(pending_bias(stochastic, 1).defined(), left.defined());
  EXPECT_FALSE(pending(stochastic, 1).factors.defined()) << "stochastic depth is the identity in eval";

  BlockOptions dropout_options{32, 4, 2.0};
  dropout_options.drop = 0.1;
  Block dropout(dropout_options);
  EXPECT_FALSE(pending_bias(dropout, 1).defined()) << "a dropout after the projection";
}

// On the fp32 kernels' bf16 products a block leaves the rounding of its MLP branch's fp32 product
// (and, inside, of its attention branch's) to the pass that adds it to the stream, where the branch
// goes in unscaled and no dropout follows the projection. The stack's output and the input's and
// weights' gradients are bit for bit those of the same blocks with LayerScales of 1, which take each
// branch rounded to bf16 first (and scale it by 1: no value changes).
TEST(ResidualLayerNorm, BlocksOnTheFp32KernelsLeaveTheRoundingOfTheirBranchesToTheNextPass) {
  const vit::testing::ScopedBf16Products chosen(Bf16Products::kFp32Blas);
  const IntraOpThreads one_thread(1);
  torch::manual_seed(42);
  const auto make_blocks = [](double layer_scale, double drop) {
    BlockOptions options{32, 4, 2.0};
    options.layer_scale_init = layer_scale;
    options.drop = drop;
    return std::vector<Block>{Block(options), Block(options)};
  };
  auto plain = make_blocks(0.0, 0.0), scaled = make_blocks(1.0, 0.0);
  {
    torch::NoGradGuard no_grad;
    for (size_t b = 0; b < plain.size(); ++b) {
      for (const auto& item : plain[b]->named_parameters()) parameter(*scaled[b], item.key()).copy_(item.value());
    }
  }
  auto final_norm = vit_layer_norm(32);
  const auto x = torch::randn({3, 7, 32}), projection = torch::randn({3, 7, 32});
  struct Run {
    bool left;
    std::vector<torch::Tensor> results;
  };
  const auto run = [&](std::vector<Block>& blocks) {
    const auto input = x.clone().requires_grad_();
    set_autocast_dtype(c10::kCPU, torch::kBFloat16);
    set_autocast_enabled(c10::kCPU, true);
    ResidualStream stream{input, {}};
    for (auto& block : blocks) stream = block->forward_stream(stream);
    const auto out = normalize(stream, final_norm, torch::kFloat32).normalized;
    set_autocast_enabled(c10::kCPU, false);
    (out * projection).sum().backward();
    Run result{stream.pending.bf16_values, {out.detach(), input.grad()}};
    for (size_t b = 0; b < blocks.size(); ++b) {
      for (const auto& item : plain[b]->named_parameters()) {
        result.results.push_back(parameter(*blocks[b], item.key()).grad().clone());
      }
    }
    return result;
  };
  const auto left = run(plain), rounded_first = run(scaled);
  ASSERT_EQ(left.left, bf16_products_on_blas(x)) << "only a product on the fp32 kernels leaves its rounding";
  EXPECT_FALSE(rounded_first.left) << "LayerScale scales the rounded branch";
  ASSERT_EQ(left.results.size(), rounded_first.results.size());
  for (size_t i = 0; i < left.results.size(); ++i) {
    EXPECT_TRUE(torch::equal(left.results[i], rounded_first.results[i])) << "tensor " << i;
  }

  auto dropout = make_blocks(0.0, 0.1);
  EXPECT_FALSE(run(dropout).left) << "a dropout after fc2";
  for (auto& block : dropout) block->eval();
  EXPECT_EQ(run(dropout).left, left.left) << "dropout is the identity in eval";
}

// What the fusion does to bf16 training: the gradients of a stack of blocks under bf16 autocast,
// with the kernel and with LibTorch's operators, each against the same blocks in float64.
// In training with stochastic depth, blocks whose branches leave their bias (fp32) or their rounding
// (bf16 on the fp32 kernels) to the next pass leave it their samples' factors too: a 2-block stack
// and final norm on the kernel (one thread) gives the output and gradients of the same blocks on
// LibTorch's operators (two threads), the factors drawn alike; some samples are dropped.
TEST(ResidualLayerNorm, BlocksLeaveStochasticDepthToTheNextPass) {
  const vit::testing::ScopedBf16Products chosen(Bf16Products::kFp32Blas);
  for (const bool bf16 : {false, true}) {
    torch::manual_seed(44);
    BlockOptions options{32, 4, 2.0};
    options.drop_path = 0.5;
    std::vector<Block> blocks{Block(options), Block(options)};
    auto final_norm = vit_layer_norm(32);
    const auto x = torch::randn({6, 7, 32}), projection = torch::randn({6, 7, 32});
    const auto run = [&](int threads) {
      const IntraOpThreads intra_op(threads);
      for (auto& block : blocks) block->zero_grad();
      const auto input = x.clone().requires_grad_();
      set_autocast_dtype(c10::kCPU, torch::kBFloat16);
      set_autocast_enabled(c10::kCPU, bf16);
      torch::manual_seed(45);
      ResidualStream stream{input, {}};
      for (auto& block : blocks) stream = block->forward_stream(stream);
      const auto out = normalize(stream, final_norm, torch::kFloat32).normalized;
      set_autocast_enabled(c10::kCPU, false);
      (out * projection).sum().backward();
      std::vector<torch::Tensor> results{out.detach(), input.grad()};
      for (auto& block : blocks) {
        for (const auto& parameter : block->parameters()) results.push_back(parameter.grad().clone());
      }
      return std::pair{stream.pending, results};
    };
    const auto [pending, in_pass] = run(1);
    const auto [plain, on_libtorch] = run(2);
    const auto label = ::testing::Message() << (bf16 ? "bf16" : "fp32");
    if (__builtin_cpu_supports("avx2")) {
      ASSERT_TRUE(pending.factors.defined()) << label;
      EXPECT_TRUE(bf16 ? pending.bf16_values : pending.bias.defined()) << label;
      EXPECT_TRUE((pending.factors == 0).any().item<bool>()) << label << ": a sample dropped";
    }
    // On two threads an fp32 branch is the whole layer times DropPath's factors; a bf16 one still
    // leaves its rounding and factors, for LibTorch's operators to apply (residual_add).
    EXPECT_EQ(plain.factors.defined(), bf16) << label;
    for (size_t i = 0; i < in_pass.size(); ++i) {
      EXPECT_TRUE(torch::allclose(in_pass[i], on_libtorch[i], bf16 ? 2e-2 : 1e-4, bf16 ? 2e-2 : 1e-5))
          << label << ", result " << i << ": " << (in_pass[i] - on_libtorch[i]).abs().max().item<float>();
    }
  }
}

TEST(ResidualLayerNorm, Bf16GradientsOfBlocksAreAsCloseToFloat64AsLibTorchs) {
  const auto make_blocks = [] {
    torch::manual_seed(36);
    std::vector<Block> blocks;
    for (int i = 0; i < 4; ++i) blocks.emplace_back(BlockOptions{64, 4, 2.0});
    return blocks;
  };
  const auto x = torch::randn({8, 17, 64});
  const auto projection = torch::randn({8, 17, 64});
  const auto gradients = [&](std::vector<Block> blocks, bool bf16, bool fused) {
    auto final_norm = vit_layer_norm(64);
    if (!bf16) {
      for (auto& block : blocks) block->to(torch::kFloat64);
      final_norm->to(torch::kFloat64);
    }
    const auto out = run_blocks(blocks, final_norm, bf16 ? x : x.to(torch::kFloat64), bf16, fused);
    (out * projection.to(out.scalar_type())).sum().backward();
    std::vector<torch::Tensor> grads;
    for (const auto& grad : parameter_gradients(blocks)) grads.push_back(grad.to(torch::kFloat64).flatten());
    return torch::cat(grads);
  };
  const auto exact = gradients(make_blocks(), false, false);
  const double fused = vit::testing::relative_error(gradients(make_blocks(), true, true), exact);
  const double unfused = vit::testing::relative_error(gradients(make_blocks(), true, false), exact);
  EXPECT_GT(unfused, 0.0);
  EXPECT_LE(fused, 1.1 * unfused) << "fused " << fused << ", LibTorch " << unfused;
}

}  // namespace
}  // namespace vit::models
