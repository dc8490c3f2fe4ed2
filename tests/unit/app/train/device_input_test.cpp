#include "app/train/device_input.h"
#include "app/config/config.h"
#include "app/train/loaders.h"
#include "data/loader.h"
#include "data/sources.h"
#include "support/run_support.h"
#include "support/test_support.h"

#include <gtest/gtest.h>

namespace vit::testing {
namespace {

// On CUDA the uint8 batches come from pinned memory, as `vit train` loads them there.
TEST(DeviceInputOnDevice, Uint8BatchesNormalizedOnTheDeviceEqualTheLoadersFloatBatches) {
  const auto device = test_device();
  TempDir dir;
  write_halves_dataset(dir / "train", 12, 4);
  const auto config = app::load_config_text(
      "model: {image_size: 16, patch_size: 4, in_chans: 3, num_classes: 2, dim: 32, depth: 1, heads: 2}\n"
      "data:\n  train: {source: imagefolder, path: " +
          (dir / "train").string() +
          "}\n  mean: [0.4, 0.5, 0.6]\n  std: [0.2, 0.25, 0.3]\n  train_transforms: {hflip: 0.5}\n",
      "test config", {});
  const auto splits = data::open_datasets(config.data);
  data::LoaderOptions options;
  options.sampler.batch_size = 8;
  options.sampler.shuffle = true;
  options.sampler.seed = 3;
  options.workers = 2;
  data::DataLoader floats(splits.train, app::make_transform(config, true), options);
  options.bytes = true;
  options.pin_memory = device.is_cuda();
  data::DataLoader bytes(splits.train, app::make_transform(config, true), options);
  options.pin_memory = false;
  const app::DeviceInput to_input(bytes.transform().mean(), bytes.transform().std(), device);
  EXPECT_EQ(bytes.transform().mean(), (std::vector<double>{0.4, 0.5, 0.6}));

  floats.start_epoch(1);
  bytes.start_epoch(1);
  int batches = 0;
  while (auto expected = floats.next()) {
    const auto got = bytes.next();
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(got->images.scalar_type(), torch::kUInt8);
    EXPECT_EQ(got->images.is_pinned(), device.is_cuda());
    EXPECT_TRUE(torch::equal(got->labels, expected->labels));
    const auto input = to_input(got->images);
    EXPECT_EQ(input.scalar_type(), torch::kFloat32);
    EXPECT_EQ(input.device(), device);
    EXPECT_LE((input.cpu() - expected->images).abs().max().item<double>(), 1e-5);
    ++batches;
  }
  EXPECT_EQ(batches, 3);
  EXPECT_FALSE(bytes.next().has_value());

  // Float batches pass through untouched; uint8 batches cannot carry mixup.
  EXPECT_TRUE(torch::equal(to_input(torch::ones({1, 3, 2, 2})).cpu(), torch::ones({1, 3, 2, 2})));
  options.mixup.mixup_alpha = 0.8;
  options.num_classes = 2;
  EXPECT_THROW(data::DataLoader(splits.train, app::make_transform(config, true), options), std::invalid_argument);
  // Only a CUDA device gets uint8 batches; on the CPU the loader threads normalize.
  EXPECT_FALSE(app::uint8_batches(config, true, torch::kCPU));
  EXPECT_TRUE(app::uint8_batches(config, true, torch::Device(torch::kCUDA, 0)));
}

}  // namespace
}  // namespace vit::testing
