#include "data/loader.h"
#include "data/errors.h"
#include "data/image_folder.h"
#include "data/sampler.h"
#include "support/data_test_support.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <set>

namespace vit::data {
namespace {

using vit::testing::TempDir;

TransformOptions augmenting() {
  TransformOptions options;
  options.random_resized_crop.enabled = true;
  options.hflip = 0.5;
  options.color_jitter.brightness = 0.4;
  options.color_jitter.contrast = 0.4;
  options.random_erasing.probability = 0.5;
  options.mean = {0.5};
  options.std = {0.25};
  return options;
}

std::vector<Batch> whole_epoch(DataLoader& loader, int64_t epoch, int64_t first_step = 0) {
  loader.start_epoch(epoch, first_step);
  std::vector<Batch> batches;
  while (auto batch = loader.next()) batches.push_back(std::move(*batch));
  return batches;
}

LoaderOptions loader_options(int64_t batch_size, int64_t workers) {
  LoaderOptions options;
  options.sampler.batch_size = batch_size;
  options.sampler.shuffle = true;
  options.sampler.seed = 1234;
  options.workers = workers;
  options.prefetch_batches = 3;
  return options;
}

TEST(Sampler, ShardsAreDisjointCoverTheEpochAndMatchTheSingleRankBatches) {
  const size_t size = 103;
  SamplerOptions single{8, true, false, 9, 0, 1};
  const auto all = epoch_indices(size, single, 4);
  std::set<size_t> unique(all.begin(), all.end());
  EXPECT_EQ(unique.size(), size);

  std::set<size_t> covered;
  size_t total = 0;
  for (int64_t rank = 0; rank < 3; ++rank) {
    SamplerOptions shard{8, true, false, 9, rank, 3};
    const auto indices = epoch_indices(size, shard, 4);
    total += indices.size();
    covered.insert(indices.begin(), indices.end());
    EXPECT_EQ(batches_per_epoch(size, shard), static_cast<int64_t>((indices.size() + 7) / 8));
  }
  EXPECT_EQ(total, size);
  EXPECT_EQ(covered.size(), size);

  // drop_last: equal full batches per rank, and at step s ranks 0 and 1 hold the single-rank
  // batch s of twice the size.
  SamplerOptions wide{16, true, true, 9, 0, 1};
  const auto wide_order = epoch_indices(size, wide, 2);
  for (int64_t rank = 0; rank < 2; ++rank) {
    SamplerOptions half{8, true, true, 9, rank, 2};
    const auto indices = epoch_indices(size, half, 2);
    ASSERT_EQ(indices.size(), 48u);
    for (size_t step = 0; step < 6; ++step) {
      const std::set<size_t> wide_batch(wide_order.begin() + step * 16, wide_order.begin() + (step + 1) * 16);
      for (size_t j = 0; j < 8; ++j) EXPECT_TRUE(wide_batch.count(indices[step * 8 + j]));
    }
  }
}

TEST(Sampler, ShuffleIsDeterministicPerSeedAndEpoch) {
  SamplerOptions options{4, true, false, 1, 0, 1};
  EXPECT_EQ(epoch_indices(50, options, 0), epoch_indices(50, options, 0));
  EXPECT_NE(epoch_indices(50, options, 0), epoch_indices(50, options, 1));
  options.shuffle = false;
  EXPECT_EQ(epoch_indices(5, options, 3), (std::vector<size_t>{0, 1, 2, 3, 4}));
}

TEST(DataLoader, BatchesAreIdenticalForAnyWorkerCount) {
  auto dataset = std::make_shared<TensorDataset>(vit::testing::counting_dataset(45, 3));
  DataLoader one(dataset, Transform(augmenting(), 6, 1), loader_options(8, 1));
  DataLoader three(dataset, Transform(augmenting(), 6, 1), loader_options(8, 3));
  const auto a = whole_epoch(one, 2);
  const auto b = whole_epoch(three, 2);
  ASSERT_EQ(a.size(), 6u);
  ASSERT_EQ(b.size(), 6u);
  EXPECT_EQ(a.back().images.size(0), 5);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::equal(a[i].images, b[i].images)) << "batch " << i;
    EXPECT_TRUE(torch::equal(a[i].labels, b[i].labels));
    EXPECT_TRUE(torch::equal(a[i].labels, a[i].indices.remainder(3)));
    EXPECT_EQ(a[i].step, static_cast<int64_t>(i));
  }
  const auto next_epoch = whole_epoch(one, 3);
  EXPECT_FALSE(torch::equal(a[0].indices, next_epoch[0].indices));
}

TEST(DataLoader, ResumingMidEpochGivesTheSameBatches) {
  auto dataset = std::make_shared<TensorDataset>(vit::testing::counting_dataset(40, 4));
  DataLoader loader(dataset, Transform(augmenting(), 6, 1), loader_options(8, 2));
  const auto full = whole_epoch(loader, 1);
  const auto resumed = whole_epoch(loader, 1, 3);
  ASSERT_EQ(resumed.size(), 2u);
  EXPECT_TRUE(torch::equal(resumed[0].images, full[3].images));
  EXPECT_TRUE(torch::equal(resumed[1].images, full[4].images));
}

TEST(DataLoader, DropLastAndNormalization) {
  auto dataset = std::make_shared<TensorDataset>(vit::testing::counting_dataset(10, 2));
  TransformOptions plain;
  plain.mean = {0.5};
  plain.std = {0.5};
  auto options = loader_options(4, 2);
  options.sampler.shuffle = false;
  options.sampler.drop_last = true;
  DataLoader loader(dataset, Transform(plain, 8, 1), options);
  const auto batches = whole_epoch(loader, 0);
  ASSERT_EQ(batches.size(), 2u);
  // Image 5 has every pixel 5: (5/255 - 0.5) / 0.5.
  EXPECT_NEAR(batches[1].images[1].mean().item<double>(), (5.0 / 255.0 - 0.5) / 0.5, 1e-6);
  EXPECT_EQ(batches[1].images.sizes(), (std::vector<int64_t>{4, 1, 8, 8}));
}

TEST(DataLoader, BatchBufferBytesCountWholeBatchesForEveryWorkerAndEveryBatchAhead) {
  auto dataset = std::make_shared<TensorDataset>(vit::testing::counting_dataset(45, 3));
  auto options = loader_options(8, 2);  // 2 workers, 3 batches ahead, and 2 in the consumer's hands
  const DataLoader floats(dataset, Transform(augmenting(), 6, 1), options);
  EXPECT_EQ(floats.batch_buffer_bytes(), 7 * 8 * 6 * 6 * 4);
  options.bytes = true;
  options.prefetch_batches = 1;
  const DataLoader bytes(dataset, Transform(TransformOptions{}, 6, 3), options);
  EXPECT_EQ(bytes.batch_buffer_bytes(), 5 * 8 * 3 * 6 * 6);
}

TEST(DataLoader, StopsCleanlyMidEpoch) {
  auto dataset = std::make_shared<TensorDataset>(vit::testing::counting_dataset(2000, 2));
  DataLoader loader(dataset, Transform(augmenting(), 32, 1), loader_options(16, 2));
  loader.start_epoch(0);
  ASSERT_TRUE(loader.next().has_value());
  const auto start = std::chrono::steady_clock::now();
  loader.stop();
  EXPECT_FALSE(loader.next().has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(DataLoader, BadImagesFailOrAreSkippedAndCounted) {
  TempDir dir;
  vit::testing::write_image_folder(dir.path(), {"a", "b"}, 3);
  vit::testing::write_file(dir / "b" / "9_corrupt.png", "garbage bytes");
  auto dataset = std::make_shared<ImageFolderDataset>(dir.path(), 1'000'000);
  auto options = loader_options(4, 2);
  options.sampler.shuffle = false;
  {
    DataLoader strict(dataset, Transform(TransformOptions{}, 12, 3), options);
    strict.start_epoch(0);
    std::string message;
    try {
      while (strict.next()) {
      }
    } catch (const DataError& error) {
      message = error.what();
    }
    EXPECT_NE(message.find("9_corrupt.png"), std::string::npos) << message;
  }
  options.skip_bad_samples = true;
  DataLoader lenient(dataset, Transform(TransformOptions{}, 12, 3), options);
  const auto batches = whole_epoch(lenient, 0);
  int64_t seen = 0;
  for (const auto& batch : batches) seen += batch.images.size(0);
  EXPECT_EQ(seen, 6);
  EXPECT_EQ(lenient.skipped_samples(), 1);
}

TEST(DataLoader, MixupProducesSoftTargets) {
  auto dataset = std::make_shared<TensorDataset>(vit::testing::counting_dataset(32, 4));
  auto options = loader_options(8, 2);
  options.mixup.mixup_alpha = 0.8;
  options.mixup.cutmix_alpha = 1.0;
  options.num_classes = 4;
  DataLoader loader(dataset, Transform(TransformOptions{}, 8, 1), options);
  for (const auto& batch : whole_epoch(loader, 0)) {
    ASSERT_EQ(batch.targets.sizes(), (std::vector<int64_t>{8, 4}));
    EXPECT_TRUE(torch::allclose(batch.targets.sum(1), torch::ones({8})));
    // Row i mixes labels i and 7 - i with weights lambda and 1 - lambda.
    const auto lambda = batch.targets[0][batch.labels[0].item<int64_t>()].item<double>();
    if (batch.labels[0].item<int64_t>() != batch.labels[7].item<int64_t>()) {
      EXPECT_NEAR(batch.targets[7][batch.labels[7].item<int64_t>()].item<double>(), lambda, 1e-6);
    }
  }
}

}  // namespace
}  // namespace vit::data
