// A detector's evaluation, whole and in batch slices: the detector's own predictions.
#include "app/train/evaluation.h"

#include "app/config/config.h"
#include "app/train/device_input.h"
#include "app/train/loaders.h"
#include "data/synthetic_shapes.h"
#include "models/core/registry.h"
#include "models/detection/box_ops.h"
#include "support/test_support.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

namespace vit::app {
namespace {

using vit::testing::TempDir;
using vit::testing::write_file;

TEST(DetectionEvaluation, CollectsEveryQueryOfTheDetectorWholeAndInSlices) {
  TempDir dir;
  data::SyntheticShapesOptions shapes;
  shapes.train_images = 4;
  shapes.val_images = 7;
  data::write_synthetic_shapes(dir / "shapes", shapes);
  const auto shapes_dir = (dir / "shapes").string();
  write_file(dir / "config.yaml",
             "model: {preset: detr_shapes_64, depth: 1, dim: 32, heads: 2, decoder_depth: 1, decoder_heads: 2}\n"
             "data:\n  train: {source: coco, images: " +
                 shapes_dir + "/train, annotations: " + shapes_dir + "/train.json}\n  val: {source: coco, images: " +
                 shapes_dir + "/val, annotations: " + shapes_dir + "/val.json}\ntrain: {amp: none}\n");
  const auto config = load_config(dir / "config.yaml", {});
  torch::manual_seed(0);
  auto model = models::build_model(config.model.options);
  LoaderRequest request;
  request.batch_size = 5;  // a batch of 5 and one of 2: slices of 3 + 2 and 1 + 1 images
  const auto loader = make_loader(config, open_checked_datasets(config).val, request);
  // Each query of each image, as the detector's own forward of the whole batch gives it.
  std::vector<ScoredBox> expected;
  size_t objects = 0;
  {
    torch::NoGradGuard no_grad;
    model->eval();
    auto* detector = models::detection_model(model);
    const DeviceInput to_input(loader->transform().mean(), loader->transform().std(), torch::kCPU);
    loader->start_epoch(0);
    while (auto batch = loader->next()) {
      objects += static_cast<size_t>(batch->box_counts.sum().item<int64_t>());
      const auto predictions = detector->detect(to_input(batch->images));
      const auto [scores, classes] = models::object_scores(predictions.logits);
      const auto boxes = models::box_cxcywh_to_xyxy(predictions.boxes);
      for (int64_t b = 0; b < boxes.size(0); ++b) {
        for (int64_t q = 0; q < boxes.size(1); ++q) {
          const auto box = boxes[b][q];
          expected.push_back(
              {batch->indices[b].item<int64_t>(),
               classes[b][q].item<int64_t>(),
               scores[b][q].item<double>(),
               {box[0].item<double>(), box[1].item<double>(), box[2].item<double>(), box[3].item<double>()}});
        }
      }
    }
  }
  const int previous_threads = at::get_num_threads();
  at::set_num_threads(2);
  for (const int64_t slices : {1, 2}) {
    const auto found = collect_detections(model, *loader, torch::kCPU, false, BatchShards(slices));
    EXPECT_EQ(found.images, 7);
    EXPECT_EQ(found.objects.size(), objects);
    ASSERT_EQ(found.detections.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      const auto &ours = found.detections[i], &theirs = expected[i];
      EXPECT_EQ(ours.image, theirs.image) << slices << " slices, detection " << i;
      EXPECT_EQ(ours.category, theirs.category) << slices << " slices, detection " << i;
      EXPECT_NEAR(ours.score, theirs.score, 1e-5) << slices << " slices, detection " << i;
      for (size_t c = 0; c < ours.box.size(); ++c) {
        EXPECT_NEAR(ours.box[c], theirs.box[c], 1e-5) << slices << " slices, detection " << i;
      }
    }
  }
  at::set_num_threads(previous_threads);
  // Not a trivial model: its queries disagree on boxes.
  EXPECT_NE(expected[0].box, expected[1].box);
}

}  // namespace
}  // namespace vit::app
