#include "app/config/config.h"

#include "app/errors.h"
#include "support/test_support.h"

#include "models/vit/vit_options.h"

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
  EXPECT_EQ(config.model.options.as<models::VitOptions>().embed_dim, 192);
  EXPECT_EQ(config.model.options.as<models::VitOptions>().depth, 4);
  EXPECT_FALSE(config.model.options.as<models::VitOptions>().qkv_bias);
  EXPECT_EQ(config.model.options.as<models::VitOptions>().pos_embed, models::PosEmbedKind::SinCos2d);
  EXPECT_EQ(config.model.options.as<models::VitOptions>().pool, models::PoolKind::Mean);
  EXPECT_EQ(config.output, "/tmp/runs");
}

TEST(Config, OverridesWorkWithoutAFile) {
  const auto config = load_config(std::nullopt, {"model.preset=vit_micro_patch4_28", "model.dim=96", "model.heads=6"});
  EXPECT_EQ(config.model.options.as<models::VitOptions>().embed_dim, 96);
  EXPECT_EQ(config.model.options.as<models::VitOptions>().num_heads, 6);
  EXPECT_EQ(config.model.options.as<models::VitOptions>().image_size, 28);
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

TEST(Config, DuplicateKeysAreRejected) {
  const auto message = config_error("train:\n  epochs: 4\n  lr: 0.1\n  epochs: 3\n");
  EXPECT_NE(message.find("config.yaml:4: duplicate key 'train.epochs' (first given on line 2)"), std::string::npos)
      << message;
}

TEST(Config, NotYamlIsReportedWithItsLine) {
  const auto message = config_error("model:\n  dim: [1, 2\n  depth: 3\n");
  EXPECT_NE(message.find("config.yaml:"), std::string::npos) << message;
  EXPECT_NE(message.find("not valid YAML"), std::string::npos) << message;
  EXPECT_NE(config_error("- a\n- b\n").find("expected a mapping at the top level"), std::string::npos);
}

TEST(Config, DataSectionSourcesTransformsAndNormalization) {
  TempDir dir;
  const auto file = dir / "config.yaml";
  write_file(file,
             "model: {preset: vit_micro_patch4_32}\n"
             "data:\n"
             "  train: {source: imagefolder, path: /images/train}\n"
             "  val: {source: csv, path: /images/val.csv}\n"
             "  class_names: [cat, dog]\n"
             "  on_bad_sample: skip\n"
             "  mean: [0.5, 0.4, 0.3]\n"
             "  std: [0.2]\n"
             "  train_transforms:\n"
             "    random_resized_crop: {scale: [0.35, 1.0]}\n"
             "    hflip: 0.5\n"
             "    rand_augment: {num_ops: 2, magnitude: 9}\n"
             "    random_erasing: {p: 0.25}\n"
             "  val_transforms: {crop_pct: 0.875}\n");
  const auto config = load_config(file, {"data.workers=3"});
  EXPECT_EQ(config.data.train.kind, data::SourceKind::ImageFolder);
  EXPECT_EQ(config.data.train.path, "/images/train");
  ASSERT_TRUE(config.data.val.has_value());
  EXPECT_EQ(config.data.val->kind, data::SourceKind::Csv);
  EXPECT_EQ(config.data.class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(config.data.on_bad_sample, data::BadSamplePolicy::Skip);
  EXPECT_EQ(config.data.workers, 3);
  const auto& train = config.data.train_transforms;
  EXPECT_TRUE(train.random_resized_crop.enabled);
  EXPECT_DOUBLE_EQ(train.random_resized_crop.scale_min, 0.35);
  EXPECT_DOUBLE_EQ(train.random_resized_crop.ratio_max, 4.0 / 3.0);
  EXPECT_EQ(train.rand_augment.num_ops, 2);
  EXPECT_DOUBLE_EQ(train.random_erasing.probability, 0.25);
  EXPECT_EQ(train.mean, (std::vector<double>{0.5, 0.4, 0.3}));
  EXPECT_DOUBLE_EQ(config.data.val_transforms.crop_pct, 0.875);
  EXPECT_EQ(config.data.val_transforms.std, (std::vector<double>{0.2}));
}

TEST(Config, DataErrorsNameTheKey) {
  EXPECT_NE(config_error("data:\n  train: {source: imagefolder}\n").find("data.train.path: is required"),
            std::string::npos);
  EXPECT_NE(config_error("data:\n  train: {source: lmdb}\n").find("data.train.source: 'lmdb' is not one of"),
            std::string::npos);
  EXPECT_NE(
      config_error("data:\n  train_transforms: {hflipp: 0.5}\n").find("did you mean 'data.train_transforms.hflip'"),
      std::string::npos);
  EXPECT_NE(config_error("data:\n  train_transforms:\n    random_resized_crop: {scale: [0.9, 0.1]}\n")
                .find("low must not exceed high"),
            std::string::npos);
  EXPECT_NE(config_error("model: {in_chans: 3}\ndata:\n  mean: [0.1, 0.2]\n")
                .find("data.mean: has 2 values for a model with 3 input channels"),
            std::string::npos);
  EXPECT_NE(config_error("data:\n  std: [0.0]\n").find("data.std: every value must be positive"), std::string::npos);
  EXPECT_NE(config_error("data:\n  val: {split: test}\n  val_fraction: 0.1\n").find("cannot be combined"),
            std::string::npos);
}

TEST(Config, BuiltInDefaultIsFashionMnist) {
  const auto config = load_default_config({});
  EXPECT_EQ(config.model.options.as<models::VitOptions>().image_size, 28);
  EXPECT_EQ(config.model.options.as<models::VitOptions>().in_chans, 1);
  EXPECT_EQ(config.data.train.kind, data::SourceKind::Idx);
  ASSERT_TRUE(config.data.val.has_value());
  EXPECT_EQ(config.data.val->split, "test");
  ASSERT_EQ(config.data.class_names.size(), 10u);
  EXPECT_EQ(config.data.class_names.front(), "T-shirt/top");
  EXPECT_EQ(config.data.class_names.back(), "Ankle boot");
  // The shipped file and the built-in copy are the same configuration.
  EXPECT_EQ(std::string(default_config_text()),
            vit::testing::read_file(std::string(VIT_SOURCE_DIR) + "/configs/fashion_mnist_vit.yaml"));
}

TEST(Config, ShippedConfigsLoad) {
  const std::string configs = std::string(VIT_SOURCE_DIR) + "/configs/";
  const auto cifar = load_config(configs + "cifar10_vit.yaml", {});
  EXPECT_EQ(cifar.model.options.as<models::VitOptions>().patch_size, 4);
  EXPECT_EQ(cifar.model.options.as<models::VitOptions>().image_size, 32);
  EXPECT_EQ(cifar.data.train.kind, data::SourceKind::Cifar);
  EXPECT_EQ(cifar.data.class_names.size(), 10u);
  const auto imagenet = load_config(configs + "imagenet_vit_b16.yaml", {});
  EXPECT_EQ(imagenet.model.options.as<models::VitOptions>().embed_dim, 768);
  EXPECT_EQ(imagenet.model.options.as<models::VitOptions>().num_classes, 1000);
  EXPECT_DOUBLE_EQ(imagenet.train.mixup.cutmix_alpha, 1.0);
  EXPECT_EQ(imagenet.train.batch_size * imagenet.train.grad_accum_steps, 1024);
  EXPECT_TRUE(imagenet.data.train_transforms.random_resized_crop.enabled);
  const auto fashion = load_config(configs + "fashion_mnist_vit.yaml", {});
  EXPECT_EQ(fashion.data.class_names.size(), 10u);
}

TEST(Config, EmittedConfigLoadsBackUnchanged) {
  for (const auto* name : {"cifar10_vit.yaml", "imagenet_vit_b16.yaml", "fashion_mnist_vit.yaml"}) {
    const auto config = load_config(std::string(VIT_SOURCE_DIR) + "/configs/" + name,
                                    {"train.betas=[0.8,0.95]", "data.val_transforms.resize=40"});
    const auto text = emit_config(config);
    EXPECT_EQ(emit_config(load_config_text(text, "emitted", {})), text) << name;
  }
}

TEST(Config, TrainSectionValuesAndErrors) {
  const auto config = load_config(std::nullopt, {"train.betas=[0.8, 0.95]", "train.amp=bf16", "train.device=cuda:1",
                                                 "train.mixup.cutmix_alpha=1.0", "train.warmup_epochs=2.5"});
  EXPECT_DOUBLE_EQ(config.train.beta1, 0.8);
  EXPECT_DOUBLE_EQ(config.train.beta2, 0.95);
  EXPECT_EQ(config.train.amp, AmpMode::Bf16);
  EXPECT_EQ(config.train.device, "cuda:1");
  EXPECT_DOUBLE_EQ(config.train.mixup.cutmix_alpha, 1.0);
  EXPECT_NE(config_error("train:\n  lr: .nan\n").find("train.lr: must be a finite number"), std::string::npos);
  EXPECT_NE(config_error("train:\n  lr: -1\n").find("train.lr: must be in"), std::string::npos);
  EXPECT_NE(config_error("train:\n  batch_size: 0\n").find("train.batch_size: must be in [1,"), std::string::npos);
  EXPECT_NE(config_error("train:\n  betas: [0.9]\n").find("train.betas: expected two numbers"), std::string::npos);
  EXPECT_NE(config_error("train:\n  device: tpu\n").find("train.device: expected auto, cpu, cuda or cuda:N"),
            std::string::npos);
  EXPECT_NE(config_error("train:\n  optimizer: adam\n").find("'adam' is not one of: adamw, sgd"), std::string::npos);
  EXPECT_NE(config_error("train:\n  lr: 0.001\n  min_lr: 0.01\n").find("train.min_lr: must not exceed train.lr"),
            std::string::npos);
  EXPECT_NE(config_error("train:\n  mixup: {alpha: 0.2}\n")
                .find("unknown key 'train.mixup.alpha' (valid keys: cutmix_alpha, mixup_alpha, prob, switch_prob)"),
            std::string::npos);
  EXPECT_NE(config_error("train:\n  mixup: {mixup_alpah: 0.2}\n").find("did you mean 'train.mixup.mixup_alpha'"),
            std::string::npos);
}

TEST(Config, MalformedOverridesAreRejected) {
  EXPECT_NE(config_error("{}", {"model.depth"}).find("expected key.path=value"), std::string::npos);
  EXPECT_NE(config_error("{}", {"model..depth=3"}).find("empty key"), std::string::npos);
}

}  // namespace
}  // namespace vit::app
