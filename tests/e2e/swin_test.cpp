// Swin (model.arch swin): weights of torchvision's own SwinTransformer (a small variant built by
// tests/e2e/swin/make_swin_reference.py), imported in torchvision's, timm's and the original
// layout, give torchvision's logits; bias tables resample to another window as timm's do; a Swin
// trains, evaluates, exports (loaded by Python), predicts, benches and reports its stages, and
// `vit attention` says it has nothing to show.
#include "app/config/config.h"
#include "app/io/checkpoint.h"
#include "app/io/weight_files.h"
#include "models/core/registry.h"
#include "support/python_reference.h"
#include "support/run_support.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace vit::testing {
namespace {

namespace fs = std::filesystem;

class SwinReference : public PythonReferenceTest<SwinReference> {
 public:
  static constexpr const char* kScript = "tests/e2e/swin/make_swin_reference.py";
};

TEST_F(SwinReference, TorchvisionTimmAndOriginalLayoutsImportToTorchvisionsLogits) {
  const auto io = app::read_torch_pickle(file("swin_io.pt"));
  torch::NoGradGuard no_grad;
  for (const auto& [layout, weights] : {std::pair<std::string, std::string>{"torchvision", "swin_torchvision.pth"},
                                        {"timm", "swin_timm.pth"},
                                        {"timm", "swin_original.pth"}}) {
    SCOPED_TRACE(weights);
    const auto checkpoint = file(weights + ".ckpt");
    const auto imported = run_vit("import --arch swin --from " + layout + " " + file(weights).string() +
                                  " --image-size 32 --output " + checkpoint.string());
    ASSERT_EQ(imported.exit_code, 0) << imported.err;
    EXPECT_NE(imported.err.find("depths [2, 2, 2], heads [2, 4, 8], window_size 4"), std::string::npos) << imported.err;
    auto model = load_checkpoint_model(checkpoint);
    int64_t parameters = 0;
    for (const auto& parameter : model->parameters()) parameters += parameter.numel();
    EXPECT_EQ(parameters, io.at("parameters").item<int64_t>());
    const auto logits = model(io.at("images"));
    EXPECT_LE((logits - io.at("logits")).abs().max().item<double>(), 1e-4);
  }
}

TEST_F(SwinReference, WeightsWithoutAnImageSizeAreTakenAt224AndChecked) {
  // The variant's 2-pixel patches and windows of 4 need 224 / 2 = 112, 56, 28: all fit.
  const auto imported = run_vit("import --arch swin --from torchvision " + file("swin_torchvision.pth").string() +
                                " --output " + file("at224.ckpt").string());
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  EXPECT_NE(imported.err.find("image size 224 (Swin weights do not record it"), std::string::npos) << imported.err;
  // 36 / 2 = 18: not a multiple of the window.
  const auto unfit = run_vit("import --arch swin --from torchvision " + file("swin_torchvision.pth").string() +
                             " --image-size 36 --output " + file("unfit.ckpt").string());
  EXPECT_EQ(unfit.exit_code, 2);
  EXPECT_NE(unfit.err.find("gives stage 0 a 18x18 map, not divisible by window_size 4"), std::string::npos)
      << unfit.err;
  EXPECT_FALSE(fs::exists(file("unfit.ckpt")));
  // The heads are read off the bias tables; a --heads that disagrees is refused.
  const auto heads = run_vit("import --arch swin --from torchvision " + file("swin_torchvision.pth").string() +
                             " --heads 3 --output " + file("heads.ckpt").string());
  EXPECT_EQ(heads.exit_code, 2);
  EXPECT_NE(heads.err.find("--heads 3: the weights' first stage has 2 heads (heads per stage [2, 4, 8])"),
            std::string::npos)
      << heads.err;
  // torchvision's names given as timm's.
  const auto wrong = run_vit("import --arch swin --from timm " + file("swin_torchvision.pth").string() + " --output " +
                             file("wrong.ckpt").string());
  EXPECT_EQ(wrong.exit_code, 1) << wrong.err;
  EXPECT_NE(wrong.err.find("swin_torchvision.pth: the weights use torchvision's names (features.N...): import them "
                           "with --from torchvision"),
            std::string::npos)
      << wrong.err;
}

TEST_F(SwinReference, AnotherWindowResamplesTheBiasTablesAndANewHeadHasTheClasses) {
  const auto checkpoint = file("window2.ckpt");
  const auto imported = run_vit("import --arch swin --from torchvision " + file("swin_torchvision.pth").string() +
                                " --image-size 32 --window-size 2 --num-classes 7 --output " + checkpoint.string());
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
  EXPECT_NE(imported.err.find("6 relative position bias tables resampled bicubically to window 2"), std::string::npos)
      << imported.err;
  EXPECT_NE(imported.err.find("new head for 7 classes (the weights had 5)"), std::string::npos) << imported.err;
  auto model = load_checkpoint_model(checkpoint);
  const auto io = app::read_torch_pickle(file("swin_io.pt"));
  const auto table = model->named_parameters()["layers.0.blocks.0.attn.relative_position_bias_table"];
  ASSERT_EQ(table.sizes(), io.at("table_window2").sizes());
  EXPECT_LE((table - io.at("table_window2")).abs().max().item<double>(), 1e-5);
  torch::NoGradGuard no_grad;
  EXPECT_EQ(model(io.at("images")).sizes(), (std::vector<int64_t>{3, 7}));
}

std::string swin_config(const TempDir& dir) {
  const auto config = dir / "swin.yaml";
  write_file(config,
             "model: {arch: swin, image_size: 16, patch_size: 2, in_chans: 1, num_classes: 2, dim: 16,\n"
             "        depths: [2, 2], heads: [2, 4], window_size: 4, mlp_ratio: 2.0, drop_path: 0.05}\n" +
                 halves_data(dir) +
                 "train:\n  epochs: 10\n  batch_size: 16\n  lr: 3.0e-3\n  warmup_steps: 2\n  threads: 2\n"
                 "  ema_decay: 0.9\n");
  return config.string();
}

TEST(Swin, TrainsEvaluatesExportsPredictsBenchesAndReportsItsStages) {
  TempDir dir;
  const auto config = swin_config(dir);
  const auto run = dir / "run";
  const auto trained = run_vit("train --config " + config + " --output " + run.string());
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  const auto evaluated = run_vit("eval --checkpoint " + run.string() + " --json " + (dir / "eval.json").string());
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.err;
  // Where the bright half is: a shifted-window model learns it as a ViT does.
  EXPECT_GE(nlohmann::json::parse(read_file(dir / "eval.json"))["top1"].get<double>(), 0.9) << evaluated.out;

  // Export: the TorchScript module gives the checkpoint's logits in C++ and in Python.
  const auto model = dir / "swin.pt";
  const auto exported = run_vit("export --checkpoint " + (run / "best.ckpt").string() + " --output " + model.string());
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  const auto image = dir / "val" / "right" / "3.png";
  const auto from_script = run_vit("predict --json --model " + model.string() + " " + image.string());
  const auto from_checkpoint = run_vit("predict --json --model " + (run / "best.ckpt").string() + " " + image.string());
  ASSERT_EQ(from_script.exit_code, 0) << from_script.err;
  ASSERT_EQ(from_checkpoint.exit_code, 0) << from_checkpoint.err;
  const auto script_logits = nlohmann::json::parse(from_script.out)[0]["logits"].get<std::vector<double>>();
  const auto checkpoint_logits = nlohmann::json::parse(from_checkpoint.out)[0]["logits"].get<std::vector<double>>();
  const auto python = nlohmann::json::parse(python_jit_predict(dir, model, image));
  ASSERT_EQ(script_logits.size(), 2u);
  for (size_t c = 0; c < 2; ++c) {
    EXPECT_NEAR(script_logits[c], checkpoint_logits[c], 1e-4);
    EXPECT_NEAR(python["logits"][c].get<double>(), checkpoint_logits[c], 1e-4);
  }
  EXPECT_EQ(python["keys"],
            nlohmann::json({"patch_embed.proj.weight", "patch_embed.proj.bias", "patch_embed.norm.weight"}));

  // info: cost per stage; bench: the training step in bf16.
  const auto info = run_vit("info --json --config " + config);
  ASSERT_EQ(info.exit_code, 0) << info.err;
  const auto described = nlohmann::json::parse(info.out);
  std::vector<std::string> modules;
  for (const auto& module : described["modules"]) modules.push_back(module["name"].get<std::string>());
  EXPECT_EQ(modules, (std::vector<std::string>{"patch_embed", "layers.0", "layers.1", "norm", "head"}));
  const auto bench = run_vit("bench --config " + config +
                             " --mode train --warmup 1 --steps 2 --repeats 1 --json --set train.amp=bf16");
  ASSERT_EQ(bench.exit_code, 0) << bench.err;
  EXPECT_GT(nlohmann::json::parse(bench.out)["images_per_s_median"].get<double>(), 0.0);

  // Attention maps of class tokens do not exist in Swin: a clear refusal.
  const auto attention = run_vit("attention --checkpoint " + run.string() + " --output " +
                                 (dir / "attention").string() + " " + image.string());
  EXPECT_EQ(attention.exit_code, 2);
  EXPECT_NE(attention.err.find("model.arch swin has no class-token attention to show"), std::string::npos)
      << attention.err;
}

TEST(Swin, ConfigsWithSizesThatDoNotFitAreRefusedNamingTheKeys) {
  TempDir dir;
  const auto config = swin_config(dir);
  const auto unfit =
      run_vit("train --config " + config + " --output " + (dir / "run").string() + " --set model.window_size=3");
  EXPECT_EQ(unfit.exit_code, 2);
  EXPECT_NE(unfit.err.find("gives stage 0 a 8x8 map, not divisible by window_size 3"), std::string::npos) << unfit.err;
  const auto fractional = run_vit("info --config " + config + " --set model.depths=[2,1.5]");
  EXPECT_EQ(fractional.exit_code, 2);
  EXPECT_NE(fractional.err.find("depths"), std::string::npos) << fractional.err;
  EXPECT_NE(fractional.err.find("whole numbers"), std::string::npos) << fractional.err;
}

}  // namespace
}  // namespace vit::testing
