#include "app/config.h"

#include "app/errors.h"
#include "test_support.h"

#include <gtest/gtest.h>

namespace vit::app {
namespace {

using vit::testing::TempDir;
using vit::testing::write_file;

// The ConfigError message for loading `yaml` with `overrides`, or "" when it loads.
std::string config_error(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  TempDir dir;
  const auto file = dir / "config.yaml";
  write_file(file, yaml);
  try {
    load_config(file, overrides);
  } catch (const ConfigError& error) {
    return error.what();
  }
  return "";
}

TEST(Config, PresetThenExplicitFieldsThenOverrides) {
  TempDir dir;
  const auto file = dir / "config.yaml";
  write_file(file, "model:\n  preset: vit_tiny_patch16_224\n  depth: 6\n  pos_embed: sincos\n  pool: mean\n");
  const auto config = load_config(file, {"model.depth=4", "model.qkv_bias=false", "output=/tmp/runs"});
  EXPECT_EQ(config.model.preset, "vit_tiny_patch16_224");
  EXPECT_EQ(config.model.options.embed_dim, 192);
  EXPECT_EQ(config.model.options.depth, 4);
  EXPECT_FALSE(config.model.options.qkv_bias);
  EXPECT_EQ(config.model.options.pos_embed, models::PosEmbedKind::SinCos2d);
  EXPECT_EQ(config.model.options.pool, models::PoolKind::Mean);
  EXPECT_EQ(config.output, "/tmp/runs");
}

TEST(Config, OverridesWorkWithoutAFile) {
  const auto config = load_config(std::nullopt, {"model.preset=vit_micro_patch4_28", "model.dim=96", "model.heads=6"});
  EXPECT_EQ(config.model.options.embed_dim, 96);
  EXPECT_EQ(config.model.options.num_heads, 6);
  EXPECT_EQ(config.model.options.image_size, 28);
}

TEST(Config, UnknownKeyNamesItsLineAndTheClosestKey) {
  const auto message = config_error("model:\n  preset: vit_tiny_patch16_224\n  dimm: 64\n");
  EXPECT_NE(message.find("config.yaml:3"), std::string::npos) << message;
  EXPECT_NE(message.find("unknown key 'model.dimm'"), std::string::npos) << message;
  EXPECT_NE(message.find("did you mean 'model.dim'"), std::string::npos) << message;
  EXPECT_NE(config_error("modle:\n  dim: 64\n").find("did you mean 'model'"), std::string::npos);
}

TEST(Config, UnknownOverrideKeyIsReported) {
  const auto message = config_error("model: {}\n", {"model.deph=3"});
  EXPECT_NE(message.find("--set"), std::string::npos) << message;
  EXPECT_NE(message.find("did you mean 'model.depth'"), std::string::npos) << message;
}

TEST(Config, WrongTypesAndRangesNameTheKey) {
  EXPECT_NE(
      config_error("model:\n  depth: three\n").find("config.yaml:2: model.depth: expected an integer, got 'three'"),
      std::string::npos);
  EXPECT_NE(config_error("model:\n  depth: 2.5\n").find("model.depth: expected an integer"), std::string::npos);
  EXPECT_NE(config_error("model:\n  dim: 0\n").find("model.dim: must be in [1,"), std::string::npos);
  EXPECT_NE(config_error("model:\n  dim: -8\n").find("model.dim: must be in [1,"), std::string::npos);
  EXPECT_NE(config_error("model:\n  dropout: .nan\n").find("model.dropout: must be a finite number"),
            std::string::npos);
  EXPECT_NE(config_error("model:\n  mlp_ratio: .inf\n").find("model.mlp_ratio: must be a finite number"),
            std::string::npos);
  EXPECT_NE(config_error("model:\n  qkv_bias: maybe\n").find("model.qkv_bias: expected true or false"),
            std::string::npos);
  EXPECT_NE(config_error("model:\n  pool: max\n").find("model.pool: 'max' is not one of: cls, mean"),
            std::string::npos);
  EXPECT_NE(config_error("model:\n  preset: vit_gigantic\n").find("unknown model preset 'vit_gigantic'"),
            std::string::npos);
  EXPECT_NE(config_error("model: 3\n").find("model: expected a mapping"), std::string::npos);
}

TEST(Config, InconsistentModelDimensionsAreRejected) {
  const auto patch = config_error("model:\n  image_size: 30\n  patch_size: 4\n");
  EXPECT_NE(patch.find("image_size 30 is not divisible by patch_size 4"), std::string::npos) << patch;
  const auto heads = config_error("model:\n  dim: 100\n  heads: 3\n");
  EXPECT_NE(heads.find("embed_dim 100 is not divisible by num_heads 3"), std::string::npos) << heads;
}

TEST(Config, NotYamlIsReportedWithItsLine) {
  const auto message = config_error("model:\n  dim: [1, 2\n  depth: 3\n");
  EXPECT_NE(message.find("config.yaml:"), std::string::npos) << message;
  EXPECT_NE(message.find("not valid YAML"), std::string::npos) << message;
  EXPECT_NE(config_error("- a\n- b\n").find("expected a mapping at the top level"), std::string::npos);
}

TEST(Config, MalformedOverridesAreRejected) {
  EXPECT_NE(config_error("{}", {"model.depth"}).find("expected key.path=value"), std::string::npos);
  EXPECT_NE(config_error("{}", {"model..depth=3"}).find("empty key"), std::string::npos);
}

}  // namespace
}  // namespace vit::app
