#include "app/commands/image_inputs.h"
#include "app/config/config.h"
#include "app/io/checkpoint.h"
#include "data/transforms.h"
#include "models/core/registry.h"
#include "models/inspect/attention_rollout.h"
#include "models/vit/vision_transformer.h"
#include "support/run_support.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include <iostream>

namespace vit::testing {
namespace {

namespace fs = std::filesystem;

TEST(AttentionCommand, RolloutRowsAreDistributions) {
  torch::manual_seed(3);
  models::VisionTransformer model(small_vit(16, 4, 1, 2, 32, 3, 4));
  model->eval();
  torch::NoGradGuard no_grad;
  const auto maps = model->attention_maps(torch::randn({2, 1, 16, 16}));
  ASSERT_EQ(maps.size(), 3u);
  EXPECT_EQ(maps[0].sizes(), (std::vector<int64_t>{2, 4, 17, 17}));
  const auto rollout = models::attention_rollout(maps);
  EXPECT_EQ(rollout.sizes(), (std::vector<int64_t>{2, 17, 17}));
  EXPECT_LE((rollout.sum(-1) - 1.0).abs().max().item<double>(), 1e-5);
  EXPECT_GE(rollout.min().item<double>(), 0.0);
  const auto class_map = models::token_rollout(maps, 4, 0, 1);
  EXPECT_EQ(class_map.sizes(), (std::vector<int64_t>{2, 4, 4}));
  EXPECT_LE((class_map.sum({1, 2}) - 1.0).abs().max().item<double>(), 1e-5);
}

TEST(AttentionCommand, ATrainedModelAttendsToTheRegionThatCarriesTheLabel) {
  TempDir dir;
  write_corner_dataset(dir / "train", 96, 1);
  write_corner_dataset(dir / "val", 16, 2);
  write_file(dir / "config.yaml",
             "model: {image_size: 16, patch_size: 4, in_chans: 1, num_classes: 2, dim: 32, depth: 2, heads: 2,\n"
             "        mlp_ratio: 2.0, pool: cls, pos_embed: sincos}\n"
             "data:\n  train: {source: imagefolder, path: " +
                 (dir / "train").string() + "}\n  val: {source: imagefolder, path: " + (dir / "val").string() +
                 "}\n  mean: [0.5]\n  std: [0.25]\n"
                 "train: {epochs: 10, batch_size: 16, lr: 3.0e-3, warmup_steps: 2, threads: 2}\n");
  const auto trained =
      run_vit("train --config " + (dir / "config.yaml").string() + " --output " + (dir / "run").string());
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  ASSERT_NE(trained.err.find("top-1 100.00%"), std::string::npos) << trained.err;  // it has learned the corner

  // Mean class-token rollout over the validation images, per patch of the 4x4 grid.
  app::CheckpointReader reader(dir / "run" / "last.ckpt");
  const auto config = app::load_config_text(reader.config_yaml(), "checkpoint", {});
  auto model = models::build_model(config.model.options);
  reader.load_model(model, false);
  model->eval();
  const data::Transform transform(config.data.val_transforms, 16, 1);
  auto rollout = torch::zeros({4, 4});
  auto last_block = torch::zeros({4, 4});  // the class token's attention to the patches, heads averaged
  const auto images = app::expand_image_inputs({(dir / "val").string()});
  torch::NoGradGuard no_grad;
  for (const auto& file : images) {
    const auto maps = model->attention_maps(app::prepare_image(file, transform).input);
    rollout += models::token_rollout(maps, 4, 0, 1)[0];
    last_block += maps.back()[0].mean(0)[0].narrow(0, 1, 16).reshape({4, 4});
  }
  // Mean per patch in the top-left 2x2 patches (the label's quadrant) and in the other 12.
  const auto corner_and_elsewhere = [](const torch::Tensor& map) {
    const double corner = map.slice(0, 0, 2).slice(1, 0, 2).sum().item<double>();
    return std::make_pair(corner / 4.0, (map.sum().item<double>() - corner) / 12.0);
  };
  const auto [rollout_corner, rollout_elsewhere] = corner_and_elsewhere(rollout);
  const auto [block_corner, block_elsewhere] = corner_and_elsewhere(last_block);
  std::cout << "per patch, label quadrant vs elsewhere: rollout " << rollout_corner << " vs " << rollout_elsewhere
            << ", last block " << block_corner << " vs " << block_elsewhere << "\n";
  EXPECT_GT(rollout_corner, rollout_elsewhere);
  EXPECT_GT(block_corner, block_elsewhere);

  // The command writes both overlays per image, and refuses a block or head the model lacks.
  const auto image = (dir / "val" / "dark" / "0.png").string();
  const auto shown = run_vit("attention --checkpoint " + (dir / "run").string() + " " + image + " --output " +
                             (dir / "maps").string());
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  for (const auto* name : {"0_rollout.png", "0_heads_block1.png"}) {
    const auto png = cv::imread((dir / "maps" / name).string());
    ASSERT_FALSE(png.empty()) << name;
    EXPECT_GE(png.cols, 224) << name;
  }
  const auto one_head = run_vit("attention --checkpoint " + (dir / "run").string() + " " + image +
                                " --layer 0 --head 1 --output " + (dir / "maps").string());
  ASSERT_EQ(one_head.exit_code, 0) << one_head.err;
  EXPECT_TRUE(fs::exists(dir / "maps" / "0_head1_block0.png"));
  const auto bad_layer = run_vit("attention --checkpoint " + (dir / "run").string() + " " + image +
                                 " --layer 2 --output " + (dir / "maps").string());
  EXPECT_EQ(bad_layer.exit_code, 2);
  EXPECT_NE(bad_layer.err.find("--layer 2: the model has blocks 0..1"), std::string::npos) << bad_layer.err;
}

}  // namespace
}  // namespace vit::testing
