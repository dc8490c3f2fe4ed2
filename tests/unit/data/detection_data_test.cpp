// Detection data: COCO files (and their errors), boxes through the transforms and the loader, and
// the synthetic shapes task.
#include "data/coco_dataset.h"
#include "data/errors.h"
#include "data/loader.h"
#include "data/synthetic_shapes.h"
#include "data/transforms.h"
#include "support/data_test_support.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

namespace vit::data {
namespace {

using testing::TempDir;

TEST(ObjectBoxes, MoveWithCropsFlipsAndScales) {
  ObjectBoxes boxes = {{10, 10, 30, 20, 0}, {0, 0, 4, 4, 1}};
  crop_boxes(boxes, 5, 5, 20, 20);  // the second box falls outside and is dropped
  ASSERT_EQ(boxes.size(), 1u);
  EXPECT_DOUBLE_EQ(boxes[0].x0, 5);
  EXPECT_DOUBLE_EQ(boxes[0].x1, 20);  // clipped to the crop
  EXPECT_DOUBLE_EQ(boxes[0].y1, 15);
  flip_boxes(boxes, 20);
  EXPECT_DOUBLE_EQ(boxes[0].x0, 0);
  EXPECT_DOUBLE_EQ(boxes[0].x1, 15);
  scale_boxes(boxes, 2.0, 0.5);
  EXPECT_DOUBLE_EQ(boxes[0].x1, 30);
  EXPECT_DOUBLE_EQ(boxes[0].y0, 2.5);
}

TEST(ObjectBoxes, FollowTheTransformPipeline) {
  // A 40x20 image with a bright box at x 30..40, y 5..15; resized to 16x16 and always flipped.
  cv::Mat image(20, 40, CV_8UC3, cv::Scalar(0, 0, 0));
  image(cv::Rect(30, 5, 10, 10)).setTo(cv::Scalar(255, 255, 255));
  TransformOptions options;
  options.hflip = 1.0;
  const Transform transform(options, 16, 3);
  ObjectBoxes boxes = {{30, 5, 40, 15, 2}};
  Random random(0);
  const auto out = transform.augment(image, random, &boxes);
  ASSERT_EQ(boxes.size(), 1u);
  EXPECT_NEAR(boxes[0].x0, 0.0, 1e-9);
  EXPECT_NEAR(boxes[0].x1, 4.0, 1e-9);  // 10 of 40 pixels, flipped to the left edge, at 16/40
  EXPECT_NEAR(boxes[0].y0, 4.0, 1e-9);  // 5 of 20 at 16/20
  EXPECT_NEAR(boxes[0].y1, 12.0, 1e-9);
  EXPECT_EQ(boxes[0].category, 2);
  EXPECT_GT(out.at<cv::Vec3b>(8, 1)[0], 200);  // the pixels moved the same way
  EXPECT_LT(out.at<cv::Vec3b>(8, 14)[0], 50);

  // A random resized crop keeps every box inside the output.
  TransformOptions cropping;
  cropping.random_resized_crop.enabled = true;
  cropping.random_resized_crop.scale_min = 0.3;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    ObjectBoxes moved = {{30, 5, 40, 15, 0}, {0, 0, 20, 20, 1}};
    Random draws(seed);
    Transform(cropping, 16, 3).augment(image, draws, &moved);
    for (const auto& box : moved) {
      EXPECT_GE(box.x0, 0.0);
      EXPECT_LE(box.x1, 16.0);
      EXPECT_LT(box.x0, box.x1);
      EXPECT_LT(box.y0, box.y1);
    }
  }
}

// A COCO folder with two 32x24 images; `edit` changes the JSON before it is written.
struct CocoFiles {
  TempDir dir;
  nlohmann::json root = {
      {"images",
       {{{"id", 7}, {"file_name", "a.png"}, {"width", 32}, {"height", 24}},
        {{"id", 3}, {"file_name", "b.png"}, {"width", 32}, {"height", 24}}}},
      {"annotations",
       {{{"id", 100}, {"image_id", 7}, {"category_id", 5}, {"bbox", {2, 4, 10, 8}}, {"iscrowd", 0}},
        {{"id", 101}, {"image_id", 7}, {"category_id", 2}, {"bbox", {20, 10, 12, 14}}, {"iscrowd", 0}},
        {{"id", 102}, {"image_id", 7}, {"category_id", 2}, {"bbox", {0, 0, 30, 20}}, {"iscrowd", 1}}}},
      {"categories", {{{"id", 5}, {"name", "dog"}}, {{"id", 2}, {"name", "cat"}}}}};

  CocoFiles() {
    for (const auto* name : {"a.png", "b.png"}) cv::imwrite((dir / name).string(), testing::pattern_image(32, 24));
  }
  std::filesystem::path write(const std::string& text) const {
    testing::write_file(dir / "annotations.json", text);
    return dir / "annotations.json";
  }
  std::filesystem::path write() const { return write(root.dump(1)); }
  std::string error(bool skip = false) const {
    try {
      CocoDataset(dir.path(), write(), 1 << 20, skip);
    } catch (const DataError& e) {
      return e.what();
    }
    return "";
  }
};

TEST(CocoDataset, ReadsImagesCategoriesAndBoxes) {
  CocoFiles files;
  const CocoDataset dataset(files.dir.path(), files.write(), 1 << 20, false);
  ASSERT_EQ(dataset.size(), 2u);
  EXPECT_EQ(dataset.class_names(), (std::vector<std::string>{"cat", "dog"}));  // by category id
  EXPECT_EQ(dataset.category_ids(), (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(dataset.image_id(0), 3);  // by image id
  EXPECT_TRUE(dataset.objects(0).empty());
  const auto objects = dataset.objects(1);
  ASSERT_EQ(objects.size(), 2u);  // the crowd annotation is dropped
  EXPECT_EQ(objects[0].category, 1);
  EXPECT_DOUBLE_EQ(objects[0].x1, 12.0);
  EXPECT_DOUBLE_EQ(objects[0].y1, 12.0);
  EXPECT_DOUBLE_EQ(objects[1].x1, 32.0);  // 20 + 12: touches the right edge
  EXPECT_EQ(dataset.load(1, 3).cols, 32);
  EXPECT_EQ(dataset.label(0), kNoLabel);
}

TEST(CocoDataset, ErrorsNameTheFileAndTheAnnotation) {
  CocoFiles files;
  EXPECT_EQ(files.error(), "");

  files.write("{\n \"images\": [\n  {\"id\": 1,,}\n]}");
  try {
    CocoDataset(files.dir.path(), files.dir / "annotations.json", 1 << 20, false);
    FAIL() << "bad JSON accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("annotations.json:3: not valid JSON"), std::string::npos) << e.what();
  }

  files.root["annotations"][0]["category_id"] = 9;
  EXPECT_NE(files.error().find("annotation id 100: category_id 9 is not in \"categories\""), std::string::npos)
      << files.error();
  files.root["annotations"][0]["category_id"] = 5;

  files.root["annotations"][1]["bbox"] = {25, 10, 12, 14};  // to x 37 in a 32 wide image
  EXPECT_NE(files.error().find("annotation id 101: bbox [25, 10, 12, 14] lies outside its 32x24 image"),
            std::string::npos)
      << files.error();
  files.root["annotations"][1]["bbox"] = {20, 10, 0, 14};
  EXPECT_NE(files.error().find("annotation id 101: bbox [x, y, w, h] has no area"), std::string::npos);
  files.root["annotations"][1]["bbox"] = {20, 10, 12, 14};

  files.root["images"][1]["file_name"] = "missing.png";
  EXPECT_NE(files.error().find("image id 3: "), std::string::npos);
  EXPECT_NE(files.error().find("missing.png does not exist"), std::string::npos);
  // With on_bad_sample: skip, the image is left out and the rest is read.
  files.write();
  const CocoDataset skipping(files.dir.path(), files.dir / "annotations.json", 1 << 20, true);
  EXPECT_EQ(skipping.size(), 1u);
  EXPECT_EQ(skipping.skipped(), 1);
  files.root["images"][1]["file_name"] = "b.png";

  files.root.erase("categories");
  EXPECT_NE(files.error().find("no \"categories\" array"), std::string::npos);
}

// An id of 1e30 was cast to int64 unchecked (undefined behaviour, found by fuzz_coco under UBSan).
TEST(CocoDataset, IdsOutsideInt64OrNotWholeAreRefusedNamingTheKey) {
  CocoFiles files;
  files.root["categories"][0]["id"] = 1e30;
  EXPECT_NE(files.error().find("\"id\" is not a whole number (1e+30)"), std::string::npos) << files.error();
  files.root["categories"][0]["id"] = 18446744073709551615u;  // past int64 as an unsigned
  EXPECT_NE(files.error().find("\"id\" is not a whole number (18446744073709551615)"), std::string::npos)
      << files.error();
  files.root["categories"][0]["id"] = 5;
  files.root["images"][0]["width"] = 32.5;
  EXPECT_NE(files.error().find("image 7: \"width\" is not a whole number (32.5)"), std::string::npos) << files.error();
  files.root["images"][0]["width"] = "32";
  EXPECT_NE(files.error().find("\"width\" is not a whole number (\"32\")"), std::string::npos) << files.error();
  files.root["annotations"][0]["iscrowd"] = -1e300;
  files.root["images"][0]["width"] = 32.0;  // whole floats, as some exporters write them, are read
  EXPECT_NE(files.error().find("annotation id 100: \"iscrowd\" is not a whole number"), std::string::npos)
      << files.error();
  files.root["annotations"][0]["iscrowd"] = true;  // a boolean iscrowd drops the annotation like 1
  files.root["annotations"][1]["category_id"] = 5.0;
  const CocoDataset dataset(files.dir.path(), files.write(), 1 << 20, false);
  ASSERT_EQ(dataset.objects(1).size(), 1u);
  EXPECT_EQ(dataset.objects(1)[0].category, 1);  // category 5 ("dog") is class 1
  EXPECT_DOUBLE_EQ(dataset.objects(1)[0].x0, 20.0);
}

TEST(CocoDataset, TheLoaderGivesNormalizedCenterBoxesPerImage) {
  CocoFiles files;
  const auto dataset = std::make_shared<CocoDataset>(files.dir.path(), files.write(), 1 << 20, false);
  LoaderOptions options;
  options.sampler.batch_size = 2;
  options.workers = 1;
  DataLoader loader(dataset, Transform(TransformOptions{}, 16, 3), options);
  loader.start_epoch(0);
  const auto batch = loader.next();
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->box_counts[0].item<int64_t>(), 0);
  EXPECT_EQ(batch->box_counts[1].item<int64_t>(), 2);
  ASSERT_EQ(batch->boxes.size(0), 2);
  // [2, 4, 10, 8] of 32x24: centre (7/32, 8/24), size (10/32, 8/24).
  EXPECT_TRUE(torch::allclose(batch->boxes[0], torch::tensor({7.0f / 32, 8.0f / 24, 10.0f / 32, 8.0f / 24}), 1e-5));
  EXPECT_EQ(batch->box_labels[0].item<int64_t>(), 1);
}

TEST(SyntheticShapes, AreDeterministicAndInsideTheirImages) {
  TempDir first, second;
  SyntheticShapesOptions options;
  options.train_images = 20;
  options.val_images = 5;
  write_synthetic_shapes(first.path(), options);
  write_synthetic_shapes(second.path(), options);
  EXPECT_EQ(testing::read_file(first / "train.json"), testing::read_file(second / "train.json"));
  EXPECT_EQ(testing::read_file(first / "train/000003.png"), testing::read_file(second / "train/000003.png"));
  const CocoDataset dataset(first / "train", first / "train.json", 1 << 20, false);
  ASSERT_EQ(dataset.size(), 20u);
  EXPECT_EQ(dataset.class_names(), synthetic_shape_names());
  size_t objects = 0;
  for (size_t i = 0; i < dataset.size(); ++i) {
    const auto boxes = dataset.objects(i);
    EXPECT_GE(boxes.size(), 1u);
    EXPECT_LE(boxes.size(), 4u);
    objects += boxes.size();
    for (const auto& box : boxes) EXPECT_GE(box.x1 - box.x0, 10.0);
  }
  EXPECT_GT(objects, 30u);
  options.seed = 1;
  TempDir other;
  write_synthetic_shapes(other.path(), options);
  EXPECT_NE(testing::read_file(first / "train.json"), testing::read_file(other / "train.json"));
}

}  // namespace
}  // namespace vit::data
