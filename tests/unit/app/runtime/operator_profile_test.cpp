#include "app/runtime/operator_profile.h"

#include "app/train/batch_shards.h"
#include "models/vit/vision_transformer.h"
#include "support/test_support.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <stdexcept>
#include <string>

namespace vit::app {
namespace {

const OperatorTime* row(const OperatorProfile& profile, const std::string& name, const std::string& shapes = "") {
  for (const auto& op : profile.operators) {
    if (op.name == name && op.shapes == shapes) return &op;
  }
  return nullptr;
}

TEST(OperatorProfile, ProductFlopsAreTwiceTheMultiplyAddsOfTheShapes) {
  EXPECT_EQ(product_flops("aten::mm", {{64, 32}, {32, 16}}), 2.0 * 64 * 32 * 16);
  EXPECT_EQ(product_flops("aten::addmm", {{16}, {64, 32}, {32, 16}, {}, {}}), 2.0 * 64 * 32 * 16);
  EXPECT_EQ(product_flops("aten::bmm", {{5, 7, 3}, {5, 3, 11}}), 2.0 * 5 * 7 * 3 * 11);
  EXPECT_EQ(product_flops("vit::linear_gelu", {{64, 32}, {32, 16}}), 2.0 * 64 * 32 * 16);
  EXPECT_EQ(product_flops("vit::amx_linear", {{64, 32}, {32, 16}}), 2.0 * 64 * 32 * 16);
  EXPECT_EQ(product_flops("aten::add", {{64, 32}, {64, 32}}), 0.0);
  EXPECT_EQ(product_flops("aten::mm", {{64, 32}, {31, 16}}), 0.0) << "not a product's shapes";
  EXPECT_EQ(product_flops("aten::mm", {{64, 32}}), 0.0);
}

// Two products of one shape and an add a step: the products apart by shape with their FLOPs, the
// counts per step, the rows sorted by time.
TEST(OperatorProfile, CountsCallsPerStepAndKeepsProductsApartByShape) {
  const auto a = torch::randn({64, 32}), b = torch::randn({32, 16}), c = torch::randn({16, 8});
  const auto profile = profile_operators(
      [&] {
        (void)torch::mm(a, b);
        (void)torch::mm(a, b);
        (void)torch::mm(b, c);
        (void)(a + a);
      },
      4);
  EXPECT_EQ(profile.steps, 4);
  const auto* first = row(profile, "aten::mm", "[64, 32] [32, 16]");
  const auto* second = row(profile, "aten::mm", "[32, 16] [16, 8]");
  const auto* add = row(profile, "aten::add");
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  ASSERT_NE(add, nullptr);
  EXPECT_DOUBLE_EQ(first->calls_per_step, 2.0);
  EXPECT_DOUBLE_EQ(second->calls_per_step, 1.0);
  EXPECT_DOUBLE_EQ(add->calls_per_step, 1.0);
  EXPECT_DOUBLE_EQ(first->gflop_per_step, 2 * 2.0 * 64 * 32 * 16 / 1e9);
  EXPECT_DOUBLE_EQ(profile.product_gflop_per_step(), (2 * 2.0 * 64 * 32 * 16 + 2.0 * 32 * 16 * 8) / 1e9);
  EXPECT_EQ(add->gflop_per_step, 0.0);
  for (size_t i = 1; i < profile.operators.size(); ++i) {
    EXPECT_GE(profile.operators[i - 1].ms_per_step, profile.operators[i].ms_per_step);
  }
  EXPECT_GT(profile.product_ms_per_step(), 0.0);
  EXPECT_LE(profile.product_ms_per_step(), profile.ms_per_step());
}

// An operator's self time leaves out the operators it calls: a scope around a large product keeps
// only its own bookkeeping, and the self times add up to the scope's span.
TEST(OperatorProfile, SelfTimeLeavesOutTheOperatorsCalled) {
  const auto a = torch::randn({384, 384});
  const auto profile = profile_operators(
      [&] {
        RECORD_USER_SCOPE("outer");
        (void)torch::mm(a, a);
      },
      3);
  const auto* outer = row(profile, "outer");
  const auto* product = row(profile, "aten::mm", "[384, 384] [384, 384]");
  ASSERT_NE(outer, nullptr);
  ASSERT_NE(product, nullptr);
  EXPECT_LT(outer->ms_per_step, product->ms_per_step / 10);
  EXPECT_GE(outer->ms_per_step, 0.0);
}

// A batch cut into slices runs on worker threads: their operators count too, summed over threads.
TEST(OperatorProfile, AddsUpTheOperatorsOfEveryThread) {
  const int previous_threads = at::get_num_threads();
  at::set_num_threads(2);
  const BatchShards shards(2);
  const auto a = torch::randn({64, 32}), b = torch::randn({32, 16});
  const auto profile =
      profile_operators([&] { shards.run(2, [&](int64_t, int64_t, int64_t) { (void)torch::mm(a, b); }); }, 3);
  at::set_num_threads(previous_threads);
  const auto* product = row(profile, "aten::mm", "[64, 32] [32, 16]");
  ASSERT_NE(product, nullptr);
  EXPECT_DOUBLE_EQ(product->calls_per_step, 2.0) << "one product on each of the two slices' threads";
}

// The products a ViT's forward runs, counted by the profiler: with a head on the class token the
// last block multiplies the patch tokens' rows for its keys and values only, not for their queries,
// output projection and MLP. (Attention's per-head products run in vitcpp's kernels, which the
// profiler does not count as products; the tolerance would take the class token's row as bmm.)
TEST(OperatorProfile, AClassTokenHeadSkipsTheLastBlocksProductsForThePatchTokens) {
  const int64_t batch = 4, tokens = 17, dim = 32, hidden = 128;
  const auto product_flops_of = [&](models::PoolKind pool) {
    auto options = vit::testing::small_vit(16, 4, 3, 5, dim, 2, 4);
    options.pool = pool;
    models::VisionTransformer model(options);
    model->eval();
    const auto images = torch::randn({batch, 3, 16, 16});
    torch::NoGradGuard no_grad;
    return profile_operators([&] { (void)model(images); }, 1).product_gflop_per_step() * 1e9;
  };
  const double skipped = 2.0 * batch * (tokens - 1) * (2 * dim * dim + 2 * dim * hidden);
  const double class_token_attention_rows = 2.0 * 2 * batch * tokens * dim;  // scores and values, as bmm
  const double saved = product_flops_of(models::PoolKind::Mean) - product_flops_of(models::PoolKind::Cls);
  EXPECT_NEAR(saved, skipped, class_token_attention_rows);
}

TEST(OperatorProfile, RefusesNoStepsAndPassesOnAStepsError) {
  EXPECT_THROW(profile_operators([] {}, 0), std::invalid_argument);
  EXPECT_THROW(profile_operators([] { throw std::runtime_error("step failed"); }, 1), std::runtime_error);
  // The profiler is off again: another profile starts.
  EXPECT_NO_THROW(profile_operators([] { (void)torch::ones({2}); }, 1));
}

}  // namespace
}  // namespace vit::app
