// Files written by an earlier release keep working: tests/fixtures/release_v1 holds a run of the
// release before the model-family restructuring (make_fixture.sh says how it was written).

#include "support/run_support.h"

#include <gtest/gtest.h>
#include <torch/script.h>
#include <nlohmann/json.hpp>

namespace vit::testing {
namespace {

namespace fs = std::filesystem;

class ReleaseV1 : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path fixture = fs::path(VIT_SOURCE_DIR) / "tests" / "fixtures" / "release_v1";
    fs::copy(fixture, dir_.path() / "fixture", fs::copy_options::recursive);
    fixture_ = dir_.path() / "fixture";
    // The run's config names its data relative to where it was written.
    data_ = " --set data.train.path=" + (fixture_ / "data" / "train").string() +
            " --set data.val.path=" + (fixture_ / "data" / "val").string();
  }
  fs::path checkpoint() const { return fixture_ / "run" / "last.ckpt"; }

  TempDir dir_;
  fs::path fixture_;
  std::string data_;
};

TEST_F(ReleaseV1, ItsCheckpointEvaluatesAsItDidThen) {
  for (const auto* weights : {"", " --ema"}) {
    const auto report = dir_.path() / "eval.json";
    const auto result = run_vit("eval --checkpoint " + checkpoint().string() + weights + data_ + " --json " +
                                report.string() + " --output " + (dir_.path() / "eval").string());
    ASSERT_EQ(result.exit_code, 0) << result.err;
    if (std::string(weights).empty()) {
      const auto then = nlohmann::json::parse(read_file(fixture_ / "eval.json"));
      const auto now = nlohmann::json::parse(read_file(report));
      EXPECT_EQ(now["top1"], then["top1"]);
      EXPECT_EQ(now["confusion"], then["confusion"]);
      EXPECT_NEAR(now["loss"].get<double>(), then["loss"].get<double>(), 1e-5);
    }
  }
}

TEST_F(ReleaseV1, ItsCheckpointExportsTheSameModuleAndItsExportStillPredicts) {
  const auto exported = dir_.path() / "model.pt";
  const auto result = run_vit("export --checkpoint " + checkpoint().string() + " --output " + exported.string());
  ASSERT_EQ(result.exit_code, 0) << result.err;
  auto then = torch::jit::load((fixture_ / "model.pt").string());
  auto now = torch::jit::load(exported.string());
  const auto images = torch::randn({4, 1, 16, 16}, torch::Generator(at::detail::createCPUGenerator(3)));
  EXPECT_LE((then.forward({images}).toTensor() - now.forward({images}).toTensor()).abs().max().item<double>(), 1e-5);

  const auto image = fixture_ / "data" / "val" / "right" / "0.png";
  const auto predicted = run_vit("predict --json --model " + (fixture_ / "model.pt").string() + " " + image.string());
  ASSERT_EQ(predicted.exit_code, 0) << predicted.err;
  EXPECT_EQ(nlohmann::json::parse(predicted.out)[0]["topk"][0]["class"], "right");
}

TEST_F(ReleaseV1, ItsRunResumes) {
  const auto result = run_vit("train --resume " + checkpoint().string() + " --set train.epochs=7" + data_);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("at epoch 7"), std::string::npos) << result.err;
  const auto metrics = read_file(fixture_ / "run" / "metrics.csv");
  EXPECT_EQ(count_lines(metrics), 1u + 7u) << metrics;
}

}  // namespace
}  // namespace vit::testing
