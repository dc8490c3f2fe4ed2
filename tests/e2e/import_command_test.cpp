#include "app/config/config.h"
#include "app/errors.h"
#include "app/io/checkpoint.h"
#include "app/io/weight_files.h"
#include "models/core/registry.h"
#include "models/vit/vision_transformer.h"
#include "support/run_support.h"
#include "support/test_support.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace vit::testing {
namespace {

namespace fs = std::filesystem;

// tests/app/make_pretrained.py's files (torchvision weights in four packagings, the input and
// torchvision's logits), made once for all tests here.
class Pretrained : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const auto command = app::python_interpreter() + " " + std::string(VIT_SOURCE_DIR) +
                         "/tests/e2e/make_pretrained.py " + dir_->path().string();
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
    io_ = new app::NamedTensors(app::read_safetensors(dir_->path() / "io.safetensors"));
  }
  static void TearDownTestSuite() {
    delete io_;
    delete dir_;
  }
  static fs::path file(const std::string& name) { return dir_->path() / name; }
  static const torch::Tensor& io(const std::string& name) { return io_->at(name); }

  // The model in a checkpoint written by `vit import`.
  static models::ImageModel load(const fs::path& checkpoint) {
    app::CheckpointReader reader(checkpoint);
    auto model = models::build_model(app::load_config_text(reader.config_yaml(), "checkpoint", {}).model.options);
    reader.load_model(model, false);
    model->eval();
    return model;
  }
  static double logit_error(models::ImageModel& model) {
    torch::NoGradGuard no_grad;
    return (model(io("images")) - io("logits")).abs().max().item<double>();
  }

 private:
  static TempDir* dir_;
  static app::NamedTensors* io_;
};
TempDir* Pretrained::dir_ = nullptr;
app::NamedTensors* Pretrained::io_ = nullptr;

TEST_F(Pretrained, ImportedTorchvisionTimmAndDeitWeightsGiveTorchvisionsLogits) {
  const std::vector<std::pair<std::string, std::string>> sources = {{"torchvision", "torchvision.pth"},
                                                                    {"torchvision", "torchvision.safetensors"},
                                                                    {"timm", "timm.pth"},
                                                                    {"deit", "deit.pth"},
                                                                    {"torchvision", "state_dict.pth"},
                                                                    {"torchvision", "training_checkpoint.pth"},
                                                                    {"timm", "ddp.pth"}};
  for (const auto& [layout, name] : sources) {
    const auto output = file(name + ".ckpt");
    const auto result =
        run_vit("import --from " + layout + " " + file(name).string() + " --heads 2 --output " + output.string());
    ASSERT_EQ(result.exit_code, 0) << name << ": " << result.err;
    EXPECT_NE(result.err.find("vit image_size 32, patch_size 8, in_chans 3, num_classes 5, dim 32, depth 2, heads 2, "
                              "mlp_ratio 2, qkv_bias true"),
              std::string::npos)
        << result.err;
    auto model = load(output);
    EXPECT_LE(logit_error(model), 1e-4) << name;
  }
}

TEST_F(Pretrained, SafetensorsAreMappedNotCopied) {
  const auto tensors = app::read_safetensors(file("torchvision.safetensors"));
  ASSERT_EQ(tensors.size(), 32u);  // 4 embedding, 2 x 12 per block, 2 final norm, 2 head
  const auto& pos = tensors.at("encoder.pos_embedding");
  EXPECT_EQ(pos.sizes(), (std::vector<int64_t>{1, 17, 32}));
  // The same values as the pickle, read in place: the tensor's memory is the file's mapping.
  const auto pickled = app::read_torch_pickle(file("torchvision.pth"));
  EXPECT_TRUE(torch::equal(pos, pickled.at("encoder.pos_embedding")));
  const auto address = reinterpret_cast<uintptr_t>(pos.data_ptr());
  std::ifstream maps("/proc/self/maps");
  std::string mapped_file;
  for (std::string line; std::getline(maps, line);) {
    uintptr_t begin = 0;
    uintptr_t end = 0;
    std::sscanf(line.c_str(), "%lx-%lx", &begin, &end);
    if (address >= begin && address < end) mapped_file = line.substr(line.rfind(' ') + 1);
  }
  EXPECT_EQ(mapped_file, file("torchvision.safetensors").string());
}

TEST_F(Pretrained, ImageSizeResamplesThePositionalEmbeddingBicubicallyLikeTorch) {
  const auto output = file("resampled.ckpt");
  const auto result = run_vit("import --from torchvision " + file("torchvision.pth").string() +
                              " --heads 2 --image-size 48 --num-classes 7 --output " + output.string());
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("resampled bicubically from 4x4 to 6x6 patches"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("new head for 7 classes (the weights had 5)"), std::string::npos) << result.err;
  auto model = load(output);
  const auto params = model->named_parameters();
  EXPECT_LE((params["pos_embed"] - io("pos48")).abs().max().item<double>(), 1e-5);
  EXPECT_EQ(params["head.weight"].sizes(), (std::vector<int64_t>{7, 32}));
  const auto original = app::read_torch_pickle(file("torchvision.pth"));
  EXPECT_TRUE(
      torch::equal(params["blocks.1.mlp.fc2.weight"], original.at("encoder.layers.encoder_layer_1.mlp.3.weight")));
  torch::NoGradGuard no_grad;
  EXPECT_EQ(model(torch::randn({2, 3, 48, 48})).sizes(), (std::vector<int64_t>{2, 7}));
}

TEST_F(Pretrained, DistilledDeitWeightsGiveTheReferenceLogitsNativeAndResampled) {
  const auto native = file("deit_distilled.ckpt");
  const auto imported =
      run_vit("import --from deit " + file("deit_distilled.pth").string() + " --heads 2 --output " + native.string());
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  EXPECT_NE(imported.err.find("distilled true"), std::string::npos) << imported.err;
  auto model = load(native);
  torch::NoGradGuard no_grad;
  EXPECT_LE((model(io("distilled_images")) - io("distilled_logits")).abs().max().item<double>(), 1e-4);

  // 32 -> 48 px: the grid resampled, the class and distillation tokens' rows kept.
  const auto resampled = file("deit_distilled48.ckpt");
  const auto result = run_vit("import --from timm " + file("deit_distilled.pth").string() +
                              " --heads 2 --image-size 48 --output " + resampled.string());
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("resampled bicubically from 4x4 to 6x6 patches"), std::string::npos) << result.err;
  auto model48 = load(resampled);
  const auto params = model48->named_parameters();
  EXPECT_LE((params["pos_embed"] - io("distilled_pos48")).abs().max().item<double>(), 1e-5);
  EXPECT_LE((model48(io("distilled_images48")) - io("distilled_logits48")).abs().max().item<double>(), 1e-4);

  // A new head replaces both heads.
  const auto headed = run_vit("import --from deit " + file("deit_distilled.pth").string() +
                              " --heads 2 --num-classes 3 --output " + file("deit3.ckpt").string());
  ASSERT_EQ(headed.exit_code, 0) << headed.err;
  EXPECT_EQ(load(file("deit3.ckpt"))->named_parameters()["head_dist.weight"].sizes(), (std::vector<int64_t>{3, 32}));
}

TEST_F(Pretrained, DistillationTokensThatDoNotFitAreRefusedClearly) {
  // A distilled file against a plain preset, and a plain file against a distilled one.
  const auto plain = run_vit("import --from deit " + file("deit_distilled.pth").string() +
                             " --model deit_tiny_patch16_224 --output " + file("x.ckpt").string());
  EXPECT_EQ(plain.exit_code, 1);
  EXPECT_NE(plain.err.find("hold dist_token) but preset deit_tiny_patch16_224 has no distillation token; choose a "
                           "*_distilled preset"),
            std::string::npos)
      << plain.err;
  const auto distilled = run_vit("import --from timm " + file("timm.pth").string() +
                                 " --model deit_tiny_distilled_patch16_224 --output " + file("x.ckpt").string());
  EXPECT_EQ(distilled.exit_code, 1);
  EXPECT_NE(distilled.err.find("preset deit_tiny_distilled_patch16_224 is distilled but the weights hold no "
                               "dist_token"),
            std::string::npos)
      << distilled.err;
  // A distillation token whose positional embedding lacks its row.
  const auto short_pos = run_vit("import --from timm " + file("deit_distilled_short_pos.pth").string() +
                                 " --heads 2 --output " + file("x.ckpt").string());
  EXPECT_EQ(short_pos.exit_code, 1);
  EXPECT_NE(short_pos.err.find("pos_embed has shape 1x17x32: after 2 special tokens (class, distillation) its 15 "
                               "positions are not a square patch grid"),
            std::string::npos)
      << short_pos.err;
  EXPECT_FALSE(fs::exists(file("x.ckpt")));
}

TEST_F(Pretrained, MissingUnexpectedAndMisshapenTensorsAreNamed) {
  const auto result = run_vit("import --from timm " + file("broken.pth").string() + " --heads 2 --output " +
                              file("broken.ckpt").string());
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("missing: blocks.1.norm2.weight"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("wrong shape: blocks.0.mlp.fc1.weight (64x16 in the file, 64x32 in the model)"),
            std::string::npos)
      << result.err;
  EXPECT_NE(result.err.find("unexpected: pre_logits.fc.weight"), std::string::npos) << result.err;
  EXPECT_FALSE(fs::exists(file("broken.ckpt")));
  // The preset check: these weights are not a ViT-Ti.
  const auto preset = run_vit("import --from timm " + file("timm.pth").string() +
                              " --model vit_tiny_patch16_224 --output " + file("tiny.ckpt").string());
  EXPECT_EQ(preset.exit_code, 1);
  EXPECT_NE(preset.err.find("wrong shape: "), std::string::npos) << preset.err;
}

TEST_F(Pretrained, DamagedSafetensorsGetAClearError) {
  const auto bytes = read_file(file("torchvision.safetensors"));
  write_file(file("truncated.safetensors"), bytes.substr(0, bytes.size() - 100));
  const auto truncated = run_vit("import --from torchvision " + file("truncated.safetensors").string() + " --output " +
                                 file("t.ckpt").string());
  EXPECT_EQ(truncated.exit_code, 1);
  EXPECT_NE(truncated.err.find("truncated.safetensors: safetensors tensor '"), std::string::npos) << truncated.err;
  EXPECT_NE(truncated.err.find("do not hold"), std::string::npos) << truncated.err;
  auto bad_json = bytes;
  bad_json[9] = '!';
  write_file(file("badjson.safetensors"), bad_json);
  EXPECT_THROW(app::read_safetensors(file("badjson.safetensors")), app::FileError);

  // A shape whose element count wraps around 64 bits (2^40 x 2^24 = 2^64 = 0) must not pass as an
  // empty tensor over zero bytes.
  std::string header = R"({"x": {"dtype": "F32", "shape": [1099511627776, 16777216], "data_offsets": [0, 0]}})";
  header += std::string((8 - header.size() % 8) % 8, ' ');
  std::string overflow(8, '\0');
  for (size_t i = 0; i < 8; ++i) overflow[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  write_file(file("overflow.safetensors"), overflow + header);
  try {
    app::read_safetensors(file("overflow.safetensors"));
    ADD_FAILURE() << "an overflowing shape was accepted";
  } catch (const app::FileError& error) {
    EXPECT_NE(std::string(error.what()).find("safetensors tensor 'x': shape too large"), std::string::npos)
        << error.what();
  }
}

TEST(Pretrained_, FineTuningStartsFromTheCheckpointInModelPretrained) {
  TempDir dir;
  const auto config = tiny_config(dir) + " --set model.pos_embed=sincos --set model.dropout=0 --set model.drop_path=0";
  const auto first = run_vit("train --config " + config + " --set train.epochs=10 --output " + (dir / "a").string());
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const auto tuned =
      run_vit("train --config " + config + " --set model.pretrained=" + (dir / "a" / "last.ckpt").string() +
              " --set train.backbone_lr_scale=0.1 --set train.epochs=1 --output " + (dir / "b").string());
  ASSERT_EQ(tuned.exit_code, 0) << tuned.err;
  EXPECT_NE(tuned.err.find("starting from the weights of"), std::string::npos) << tuned.err;
  // Fresh training starts near ln 2; the pretrained start is already far below it.
  const auto fresh_first = loss_column(dir / "a" / "steps.csv").front();
  const auto tuned_first = loss_column(dir / "b" / "steps.csv").front();
  const auto value = [](const std::string& cell) { return std::stod(cell.substr(cell.find(':') + 1)); };
  EXPECT_LT(value(tuned_first), value(fresh_first) - 0.2) << tuned_first << " vs " << fresh_first;
  EXPECT_NE(read_file(dir / "b" / "config.yaml").find("pretrained: "), std::string::npos);
}

}  // namespace
}  // namespace vit::testing
