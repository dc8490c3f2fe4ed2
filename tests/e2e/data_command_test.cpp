#include "support/data_test_support.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

namespace vit::testing {
namespace {

std::string folder_config(const TempDir& dir) {
  write_image_folder(dir / "images", {"circle", "square"}, 5, ".jpg", 40);
  const auto config = dir / "config.yaml";
  write_file(config,
             "model: {preset: vit_micro_patch4_32, num_classes: 2}\n"
             "data:\n"
             "  train: {source: imagefolder, path: " +
                 (dir / "images").string() +
                 "}\n"
                 "  val_fraction: 0.2\n"
                 "  train_transforms: {random_resized_crop: {}, hflip: 0.5}\n"
                 "  val_transforms: {crop_pct: 0.875}\n");
  return config.string();
}

TEST(DataCommand, InspectCountsClassesAndWritesASampleGrid) {
  TempDir dir;
  const auto config = folder_config(dir);
  const auto result = run_vit("data inspect --config " + config + " --samples 8 --output " + (dir / "out").string());
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("split train: 8 images, 2 classes"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("image sizes: width 40..40, height 40..40"), std::string::npos) << result.out;
  const auto grid = cv::imread((dir / "out" / "train_samples.png").string());
  ASSERT_FALSE(grid.empty());
  EXPECT_EQ(grid.cols, 8 * 96);
  const auto val = run_vit("data inspect --config " + config + " --split val --output " + (dir / "out").string());
  EXPECT_EQ(val.exit_code, 0) << val.err;
  EXPECT_NE(val.out.find("split val: 2 images"), std::string::npos) << val.out;
}

TEST(DataCommand, BenchReportsThroughput) {
  TempDir dir;
  const auto result = run_vit("data bench --config " + folder_config(dir) + " --batches 3 --batch-size 4 --json");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto report = nlohmann::json::parse(result.out);
  EXPECT_EQ(report["images"].get<int64_t>(), 12);
  EXPECT_GT(report["images_per_s"].get<double>(), 0.0);
}

TEST(DataCommand, MissingDataIsARuntimeErrorNamingThePath) {
  const auto result = run_vit("data inspect --set data.train.source=imagefolder --set data.train.path=/nonexistent/x");
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_EQ(result.err, "error: /nonexistent/x: image folder root does not exist\n");
}

}  // namespace
}  // namespace vit::testing
