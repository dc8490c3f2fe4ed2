// A second architecture added the way the next ones will be: an options struct with its fields,
// a module implementing ImageModelImpl, and a registry entry. The application trains, evaluates,
// exports and describes it without naming it anywhere.

#include "app/commands/cli.h"
#include "models/core/registry.h"
#include "support/run_support.h"

#include <gtest/gtest.h>
#include <torch/nn/modules/linear.h>
#include <torch/script.h>
#include <nlohmann/json.hpp>

namespace vit::testing {
namespace {

namespace fs = std::filesystem;

struct LinearProbeOptions {
  int64_t image_size = 16;
  int64_t in_chans = 1;
  int64_t num_classes = 2;
};

// Logistic regression on the pixels: the smallest thing that learns the halves dataset.
class LinearProbeImpl : public models::ImageModelImpl {
 public:
  explicit LinearProbeImpl(const LinearProbeOptions& options)
      : options_("linear_probe", options),
        inputs_(options.in_chans * options.image_size * options.image_size),
        head_(register_module("head", torch::nn::Linear(inputs_, options.num_classes))) {}

  torch::Tensor forward(const torch::Tensor& images) override { return head_(images.flatten(1)); }
  const models::ModelOptions& model_options() const override { return options_; }
  std::string class_name() const override { return "LinearProbe"; }
  int64_t macs(const std::string& part) const override {
    return part == "head" ? inputs_ * options_.as<LinearProbeOptions>().num_classes : 0;
  }
  int64_t tokens() const override { return 1; }
  int64_t activation_bytes() const override { return 4 * inputs_; }

 private:
  models::ModelOptions options_;
  int64_t inputs_;
  torch::nn::Linear head_;
};
TORCH_MODULE(LinearProbe);

class LinearProbeArchitecture : public models::Architecture {
 public:
  std::string name() const override { return "linear_probe"; }
  std::string summary() const override { return "a linear classifier on the pixels (test)"; }
  models::ModelOptions defaults() const override { return {name(), LinearProbeOptions{}}; }
  const std::vector<models::OptionField>& fields() const override { return fields_; }
  std::vector<std::string> preset_names() const override { return {"linear_probe_rgb32"}; }
  models::ModelOptions preset(const std::string& /*name*/) const override {
    return {name(), LinearProbeOptions{32, 3, 10}};
  }
  void validate(const models::ModelOptions& /*options*/) const override {}
  models::ModelShape shape(const models::ModelOptions& options) const override {
    const auto& o = options.as<LinearProbeOptions>();
    return {o.image_size, o.in_chans, o.num_classes};
  }
  models::ImageModel build(const models::ModelOptions& options) const override {
    return models::ImageModel(LinearProbe(options.as<LinearProbeOptions>()).ptr());
  }

 private:
  std::vector<models::OptionField> fields_ =
      models::FieldList<models::ModelOptions>()
          .integer("image_size", models::option(&LinearProbeOptions::image_size), 1, 1024, "input side")
          .integer("in_chans", models::option(&LinearProbeOptions::in_chans), 1, 3, "image channels")
          .integer("num_classes", models::option(&LinearProbeOptions::num_classes), 1, 1000, "classes")
          .fields();
};

// `vit ARGUMENTS...` in this process, where the toy architecture is registered; stdout and the
// exit code.
std::pair<int, std::string> run_in_process(std::vector<std::string> arguments) {
  arguments.insert(arguments.begin(), "vit");
  std::vector<char*> argv;
  for (auto& argument : arguments) argv.push_back(argument.data());
  ::testing::internal::CaptureStdout();
  const int exit_code = app::run_cli(static_cast<int>(argv.size()), argv.data());
  return {exit_code, ::testing::internal::GetCapturedStdout()};
}

TEST(ToyArchitecture, TrainsEvaluatesExportsAndDescribesItselfThroughTheRegistryAlone) {
  models::register_architecture(std::make_unique<LinearProbeArchitecture>());
  TempDir dir;
  write_halves_dataset(dir / "train", 64, 1);
  write_halves_dataset(dir / "val", 16, 2);
  const auto config = (dir / "config.yaml").string();
  write_file(config,
             "model: {arch: linear_probe, image_size: 16, in_chans: 1, num_classes: 2}\n"
             "data:\n  train: {source: imagefolder, path: " +
                 (dir / "train").string() + "}\n  val: {source: imagefolder, path: " + (dir / "val").string() +
                 "}\n  mean: [0.5]\n  std: [0.25]\n  workers: 1\n"
                 "train: {epochs: 3, batch_size: 16, lr: 0.01, threads: 1, ema_decay: 0.5}\n");
  const auto run = dir / "run";
  ASSERT_EQ(run_in_process({"train", "--config", config, "--output", run.string()}).first, 0);
  EXPECT_NE(read_file(run / "config.yaml").find("arch: linear_probe"), std::string::npos);

  // Brightness on one half or the other: the pixels alone separate the classes.
  ASSERT_EQ(run_in_process({"eval", "--checkpoint", run.string(), "--json", (dir / "eval.json").string(), "--output",
                            (dir / "eval").string()})
                .first,
            0);
  EXPECT_GE(nlohmann::json::parse(read_file(dir / "eval.json"))["top1"].get<double>(), 0.9);

  const auto exported = dir / "probe.pt";
  ASSERT_EQ(run_in_process({"export", "--checkpoint", run.string(), "--output", exported.string()}).first, 0);
  auto module = torch::jit::load(exported.string());
  EXPECT_EQ(module.forward({torch::zeros({3, 1, 16, 16})}).toTensor().sizes(), (std::vector<int64_t>{3, 2}));
  EXPECT_NE(module.type()->name()->qualifiedName().find("LinearProbe"), std::string::npos);

  const auto [info_code, info] = run_in_process({"info", "--json", "--config", config});
  ASSERT_EQ(info_code, 0);
  const auto described = nlohmann::json::parse(info);
  EXPECT_EQ(described["arch"], "linear_probe");
  EXPECT_EQ(described["parameters"].get<int64_t>(), 16 * 16 * 2 + 2);
  EXPECT_EQ(described["gflops"].get<double>(), 2.0 * 16 * 16 * 2 / 1e9);

  // A preset picks its architecture; a feature the architecture lacks is a clear refusal.
  const auto [preset_code, preset_info] = run_in_process({"info", "--json", "--model", "linear_probe_rgb32"});
  ASSERT_EQ(preset_code, 0);
  EXPECT_EQ(nlohmann::json::parse(preset_info)["parameters"].get<int64_t>(), 32 * 32 * 3 * 10 + 10);
  EXPECT_EQ(run_in_process({"attention", "--checkpoint", run.string(), (dir / "val" / "left").string(), "--output",
                            (dir / "maps").string()})
                .first,
            2);

  // `vit import --arch` hands the weights to that architecture's importer; this one has none.
  const std::string header = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  std::string weights(8, '\0');
  weights[0] = static_cast<char>(header.size());
  weights += header + std::string(4, '\0');
  write_file(dir / "w.safetensors", weights);
  const auto import = [&](const std::string& arch) {
    return run_in_process({"import", "--from", "timm", (dir / "w.safetensors").string(), "--arch", arch, "--output",
                           (dir / "imported.ckpt").string()})
        .first;
  };
  EXPECT_EQ(import("linear_probe"), 2);  // "model.arch linear_probe cannot import weights yet"
  EXPECT_EQ(import("vit"), 1);           // the ViT importer: no patch_embed.proj.weight among the tensors
}

}  // namespace
}  // namespace vit::testing
