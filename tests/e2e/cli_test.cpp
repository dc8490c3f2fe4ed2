#include "support/test_support.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace vit::testing {
namespace {

TEST(Cli, InfoJsonReportsParametersTokensAndFlops) {
  const auto result = run_vit("info --model vit_base_patch16_224 --json");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto info = nlohmann::json::parse(result.out);
  EXPECT_EQ(info["parameters"].get<int64_t>(), 86567656);
  EXPECT_EQ(info["tokens"].get<int64_t>(), 197);
  EXPECT_NEAR(info["gflops"].get<double>(), 35.13, 0.01);
  EXPECT_NEAR(info["executed_gflops"].get<double>(), 32.70, 0.01);  // the class token's last block
  EXPECT_EQ(info["modules"].size(), 2u + 1u + 12u + 2u);  // cls_token, pos_embed, patch_embed, blocks, norm, head
}

// Only a head on the special tokens lets the last block skip the other tokens: not MAE's decoder,
// not mean pooling (the default config).
TEST(Cli, InfoCountsEveryTokenWhereTheHeadReadsThemAll) {
  for (const auto* config : {"fashion_mnist_mae.yaml", "fashion_mnist_vit.yaml"}) {
    const auto result = run_vit(std::string("info --json --config ") + VIT_SOURCE_DIR + "/configs/" + config);
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const auto info = nlohmann::json::parse(result.out);
    EXPECT_EQ(info["executed_gflops"].get<double>(), info["gflops"].get<double>()) << config;
  }
}

TEST(Cli, InfoAppliesOverrides) {
  const auto result = run_vit("info --model vit_tiny_patch16_224 --set model.image_size=384 --json");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(nlohmann::json::parse(result.out)["tokens"].get<int64_t>(), 577);
}

TEST(Cli, InfoTableShowsEveryBlock) {
  const auto result = run_vit("info --model vit_tiny_patch16_224");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("parameters  5,717,416"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("blocks.11"), std::string::npos) << result.out;
}

TEST(Cli, UsageAndConfigErrorsExitWithTwoAndOneLine) {
  const auto unknown_preset = run_vit("info --model vit_nonexistent");
  EXPECT_EQ(unknown_preset.exit_code, 2);
  const auto bad_override = run_vit("info --model vit_tiny_patch16_224 --set model.heads=5");
  EXPECT_EQ(bad_override.exit_code, 2);
  EXPECT_EQ(bad_override.err, "error: --set: model: embed_dim 192 is not divisible by num_heads 5\n");
  const auto no_command = run_vit("");
  EXPECT_EQ(no_command.exit_code, 2);
  const auto missing_file = run_vit("info --config /nonexistent/config.yaml");
  EXPECT_EQ(missing_file.exit_code, 2);
  EXPECT_NE(missing_file.err.find("/nonexistent/config.yaml"), std::string::npos);
}

TEST(Cli, ConfigPrintsTheResolvedConfigurationOrTheReference) {
  const auto resolved = run_vit("config --set train.epochs=7 --set model.depth=3");
  ASSERT_EQ(resolved.exit_code, 0) << resolved.err;
  EXPECT_NE(resolved.out.find("  epochs: 7\n"), std::string::npos) << resolved.out;
  EXPECT_NE(resolved.out.find("  depth: 3\n"), std::string::npos) << resolved.out;
  EXPECT_NE(resolved.out.find("  arch: vit\n"), std::string::npos) << resolved.out;
  const auto reference = run_vit("config --reference");
  ASSERT_EQ(reference.exit_code, 0) << reference.err;
  for (const auto* line : {"model.drop_path", "train.mixup.prob", "data.train_transforms.hflip", "output"}) {
    EXPECT_NE(reference.out.find(line), std::string::npos) << line;
  }
  EXPECT_NE(reference.out.find("chance that a batch is mixed"), std::string::npos) << reference.out;
  EXPECT_EQ(run_vit("config --set train.epochs=0").exit_code, 2);
}

TEST(Cli, HelpExitsWithZero) {
  const auto help = run_vit("info --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("Examples:"), std::string::npos);
}

}  // namespace
}  // namespace vit::testing
