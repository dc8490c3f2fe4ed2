// vit export --format safetensors | pth | onnx, checked from Python (numpy, torch.load into a
// module with timm's names, onnx.checker) and read back by vit import to the same weights.
#include "app/io/trained_model.h"
#include "app/io/weight_files.h"
#include "support/run_support.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace vit::testing {
namespace {

namespace fs = std::filesystem;

class ExportFormats : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    // Mean pooling and LayerScale: the Python module must follow vitcpp's options, not only the defaults.
    const auto trained = run_vit("train --config " + tiny_config(*dir_) + " --output " + (*dir_ / "run").string() +
                                 " --set train.max_steps=3 --set model.pool=mean --set model.layer_scale=0.1");
    ASSERT_EQ(trained.exit_code, 0) << trained.err;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path path(const std::string& name) { return *dir_ / name; }
  static fs::path checkpoint() { return path("run") / "last.ckpt"; }
  static CommandResult export_as(const std::string& format, const std::string& file, const std::string& env = "") {
    return run_vit(
        "export --checkpoint " + checkpoint().string() + " --format " + format + " --output " + path(file).string(),
        env);
  }
  // The weights of a checkpoint, by name.
  static std::map<std::string, torch::Tensor> weights_of(const fs::path& file) {
    auto trained = app::load_trained_model(file, app::CommonOptions{}, false, torch::Device(torch::kCPU));
    std::map<std::string, torch::Tensor> weights;
    for (const auto& parameter : trained.model->named_parameters()) weights[parameter.key()] = parameter.value();
    return weights;
  }
  static void expect_same_weights(const fs::path& imported) {
    const auto original = weights_of(checkpoint());
    const auto read_back = weights_of(imported);
    ASSERT_EQ(read_back.size(), original.size());
    for (const auto& [name, tensor] : original) {
      ASSERT_EQ(read_back.count(name), 1u) << name;
      EXPECT_TRUE(torch::equal(read_back.at(name), tensor)) << name;
    }
  }

  static TempDir* dir_;
};
TempDir* ExportFormats::dir_ = nullptr;

TEST_F(ExportFormats, SafetensorsAndPthEqualTheTorchScriptExportInPython) {
  for (const auto& [format, file] : std::vector<std::pair<std::string, std::string>>{
           {"torchscript", "model.pt"}, {"safetensors", "model.safetensors"}, {"pth", "model.pth"}}) {
    const auto exported = export_as(format, file);
    ASSERT_EQ(exported.exit_code, 0) << exported.err;
    EXPECT_NE(exported.err.find("as " + format), std::string::npos) << exported.err;
  }
  const auto report_file = path("exports.json");
  const auto command = app::python_interpreter() + " " + std::string(VIT_SOURCE_DIR) +
                       "/tests/e2e/exports/check_exports.py " + path("model.pt").string() + " " +
                       path("model.safetensors").string() + " " + path("model.pth").string() + " > " +
                       report_file.string();
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  const auto report = nlohmann::json::parse(read_file(report_file));
  EXPECT_EQ(report["tensors"].get<int>(), 2 + 2 + 2 * 14 + 2 + 2);  // embeddings, patch conv, blocks, norm, head
  EXPECT_LE(report["max_logit_difference"].get<double>(), 1e-5);

  // vitcpp's own reader sees the same tensors and the description.
  const auto tensors = app::read_safetensors(path("model.safetensors"));
  const auto metadata = app::read_safetensors_metadata(path("model.safetensors"));
  EXPECT_EQ(tensors.size(), report["tensors"].get<size_t>());
  EXPECT_EQ(metadata.at("class_names"), R"(["left","right"])");
  EXPECT_EQ(metadata.at("image_size"), "16");
  EXPECT_EQ(nlohmann::json::parse(metadata.at("model"))["pool"], "mean");
}

TEST_F(ExportFormats, ImportReadsSafetensorsAndPthExportsBackToIdenticalWeights) {
  ASSERT_EQ(export_as("safetensors", "again.safetensors").exit_code, 0);
  ASSERT_EQ(export_as("pth", "again.pth").exit_code, 0);
  // safetensors carries the model description: no flags needed, and the class names come along.
  const auto from_safetensors = run_vit("import --from timm " + path("again.safetensors").string() + " --output " +
                                        path("from_safetensors.ckpt").string());
  ASSERT_EQ(from_safetensors.exit_code, 0) << from_safetensors.err;
  expect_same_weights(path("from_safetensors.ckpt"));
  const auto imported =
      app::load_trained_model(path("from_safetensors.ckpt"), app::CommonOptions{}, false, torch::Device(torch::kCPU));
  EXPECT_EQ(imported.class_names, (std::vector<std::string>{"left", "right"}));

  // A state_dict tells only its shapes: the heads are given (pooling, which has no weights, is
  // chosen by the config that fine-tunes from it).
  const auto from_pth = run_vit("import --from timm " + path("again.pth").string() + " --heads 2 --output " +
                                path("from_pth.ckpt").string());
  ASSERT_EQ(from_pth.exit_code, 0) << from_pth.err;
  auto pth_model =
      app::load_trained_model(path("from_pth.ckpt"), app::CommonOptions{}, false, torch::Device(torch::kCPU));
  const auto original = weights_of(checkpoint());
  for (const auto& parameter : pth_model.model->named_parameters()) {
    ASSERT_EQ(original.count(parameter.key()), 1u) << parameter.key();
    EXPECT_TRUE(torch::equal(parameter.value(), original.at(parameter.key()))) << parameter.key();
  }
}

TEST_F(ExportFormats, OnnxIsConvertedAndCheckedByTheScript) {
  const auto exported = export_as("onnx", "model.onnx");
  ASSERT_EQ(exported.exit_code, 0) << exported.err << exported.out;
  EXPECT_NE(exported.out.find("onnx.checker passed"), std::string::npos) << exported.out;
  const auto check = app::python_interpreter() +
                     " -c \"import onnx, json, sys; m = onnx.load(sys.argv[1]); "
                     "onnx.checker.check_model(m); p = {e.key: e.value for e in m.metadata_props}; "
                     "assert json.loads(p['class_names']) == ['left', 'right'], p; "
                     "assert m.graph.input[0].name == 'images' and m.graph.output[0].name == 'logits'\" " +
                     path("model.onnx").string();
  EXPECT_EQ(std::system(check.c_str()), 0) << check;

  // Without an interpreter that can run the script: a clear error, and no file.
  const auto no_python = export_as("onnx", "missing.onnx", "VIT_PYTHON=/nonexistent/python3");
  EXPECT_EQ(no_python.exit_code, 1);
  EXPECT_NE(no_python.err.find("could not be started"), std::string::npos) << no_python.err;
  EXPECT_FALSE(fs::exists(path("missing.onnx")));
}

}  // namespace
}  // namespace vit::testing
