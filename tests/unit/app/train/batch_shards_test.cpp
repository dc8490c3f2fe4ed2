#include "app/train/batch_shards.h"

#include "app/config/config.h"
#include "app/distributed/distributed.h"
#include "app/train/ema.h"
#include "app/train/optimization.h"
#include "app/train/training_step.h"
#include "models/core/registry.h"
#include "support/test_support.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

namespace vit::app {
namespace {

using vit::testing::TempDir;
using vit::testing::write_file;

TEST(BatchShards, CoverTheRowsOnceInContiguousSlices) {
  const BatchShards shards(3);
  std::mutex mutex;
  std::vector<std::pair<int64_t, int64_t>> ranges(3);
  int calls = 0;
  shards.run(10, [&](int64_t shard, int64_t begin, int64_t end) {
    std::lock_guard<std::mutex> lock(mutex);
    ranges[static_cast<size_t>(shard)] = {begin, end};
    ++calls;
  });
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(ranges, (std::vector<std::pair<int64_t, int64_t>>{{0, 3}, {3, 6}, {6, 10}}));
  calls = 0;
  shards.run(2, [&](int64_t, int64_t begin, int64_t end) {
    std::lock_guard<std::mutex> lock(mutex);
    EXPECT_EQ(end - begin, 1);
    ++calls;
  });
  EXPECT_EQ(calls, 2);  // fewer rows than slices: a slice per row
  const auto rows = torch::arange(7).unsqueeze(1);
  EXPECT_TRUE(torch::equal(shards.map(rows, [](const torch::Tensor& slice) { return slice * 2; }), rows * 2));
}

TEST(BatchShards, SlicesRunAloneWithTheCallersGradMode) {
  const BatchShards shards(2);
  std::mutex mutex;
  std::vector<int> threads;
  std::vector<bool> grad_modes;
  const auto record = [&](int64_t, int64_t, int64_t) {
    std::lock_guard<std::mutex> lock(mutex);
    threads.push_back(at::get_num_threads());
    grad_modes.push_back(torch::GradMode::is_enabled());
  };
  shards.run(4, record);
  {
    torch::NoGradGuard no_grad;
    shards.run(4, record);
  }
  EXPECT_EQ(threads, (std::vector<int>{1, 1, 1, 1}));
  EXPECT_EQ(grad_modes, (std::vector<bool>{true, true, false, false}));
}

TEST(BatchShards, TakeTheCoresAndRunTheSlicesAllAtOnce) {
  const int previous_threads = at::get_num_threads();
  at::set_num_threads(2);
  auto shards = batch_shards_for(torch::kCPU, 2);
  ASSERT_EQ(shards.count(), 2);
  EXPECT_EQ(at::get_num_threads(), 1);  // the caller's own operators
  // Each slice waits for the other to start: slices run one after the other would not meet.
  std::mutex mutex;
  std::condition_variable started;
  int slices_started = 0;
  bool met = true;
  shards.run(2, [&](int64_t, int64_t, int64_t) {
    std::unique_lock<std::mutex> lock(mutex);
    ++slices_started;
    started.notify_all();
    met = started.wait_for(lock, std::chrono::seconds(10), [&] { return slices_started == 2; }) && met;
  });
  EXPECT_TRUE(met);
  {
    const auto copy = shards;
    shards = BatchShards();
    EXPECT_EQ(at::get_num_threads(), 1);  // a copy keeps the slices
  }
  EXPECT_EQ(at::get_num_threads(), 2);  // gone: the caller has its threads back
  // Off the CPU there are no slices, and the threads stay.
  at::set_num_threads(2);
  EXPECT_EQ(batch_shards_for(torch::Device(torch::kCUDA, 0), 2).count(), 1);
  EXPECT_EQ(at::get_num_threads(), 2);
  at::set_num_threads(previous_threads);
}

TEST(BatchShards, FewerSlicesThanThreadsRunOnTeamsOfThreadsEach) {
  const int previous_threads = at::get_num_threads();
  // train.batch_slices 2 of 5 threads: two slices of two threads (a fifth stays idle); one slice:
  // the batch whole on all the threads, the caller's.
  at::set_num_threads(5);
  EXPECT_EQ(batch_shards_for(torch::kCPU, 5, 1).count(), 1);
  EXPECT_EQ(at::get_num_threads(), 5);
  {
    const auto shards = batch_shards_for(torch::kCPU, 5, 2);
    ASSERT_EQ(shards.count(), 2);
    EXPECT_EQ(shards.threads_per_slice(), 2);
    EXPECT_EQ(at::get_num_threads(), 1);
    std::mutex mutex;
    std::vector<int> threads;
    shards.run(4, [&](int64_t, int64_t, int64_t) {
      std::lock_guard<std::mutex> lock(mutex);
      threads.push_back(at::get_num_threads());  // the team LibTorch's operators divide their work among
    });
    EXPECT_EQ(threads, (std::vector<int>{2, 2}));
  }
  EXPECT_EQ(batch_shards_for(torch::kCPU, 2, 8).count(), 2);  // at most one slice per thread
  at::set_num_threads(previous_threads);
}

TEST(BatchShards, TheFirstSlicesErrorReachesTheCaller) {
  const BatchShards shards(2);
  try {
    shards.run(4, [](int64_t shard, int64_t, int64_t) { throw std::runtime_error("slice " + std::to_string(shard)); });
    FAIL() << "no exception";
  } catch (const std::runtime_error& error) {
    EXPECT_STREQ(error.what(), "slice 0");
  }
  std::atomic<int> calls{0};  // the workers still serve
  shards.run(2, [&](int64_t, int64_t, int64_t) { ++calls; });
  EXPECT_EQ(calls, 2);
}

TEST(BatchShards, APassOverTensorsTakesEachRowOnceOnTheWorkersInSharesCutAtMultiplesOf64Elements) {
  // 1,000 elements; 300 rows of 7 (rows taken 64 at a time); no dimensions; none; 3 x 40 x 5.
  const std::vector<torch::Tensor> tensors{torch::zeros({1000}), torch::zeros({300, 7}), torch::zeros({}),
                                           torch::zeros({0}), torch::zeros({3, 40, 5})};
  const BatchShards shards(3);
  std::mutex mutex;
  std::vector<std::vector<int>> taken(tensors.size());
  std::set<std::thread::id> threads;
  const auto record = [&](size_t tensor, int64_t begin, int64_t end) {
    std::lock_guard<std::mutex> lock(mutex);
    threads.insert(std::this_thread::get_id());
    auto& rows = taken[tensor];
    rows.resize(static_cast<size_t>(tensors[tensor].dim() == 0 ? 1 : tensors[tensor].size(0)));
    const int64_t row_elements = tensors[tensor].dim() == 0 ? 1 : tensors[tensor][0].numel();
    if (end < static_cast<int64_t>(rows.size())) {
      EXPECT_EQ(end * row_elements % 64, 0) << "tensor " << tensor << " cut at row " << end;
    }
    for (int64_t row = begin; row < end; ++row) ++rows[static_cast<size_t>(row)];
  };
  shards.run_over_rows(tensors, record, 256);  // 3,901 elements: three shares
  for (size_t k = 0; k < tensors.size(); ++k) {
    EXPECT_EQ(taken[k], std::vector<int>(static_cast<size_t>(k == 3   ? 0
                                                             : k == 2 ? 1
                                                                      : tensors[k].size(0)),
                                         1))
        << "tensor " << k;
  }
  EXPECT_EQ(threads.size(), 3u);
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u);

  // A pass of fewer elements than two shares runs on the calling thread.
  threads.clear();
  taken.assign(tensors.size(), {});
  shards.run_over_rows(tensors, record);
  EXPECT_EQ(threads, std::set<std::thread::id>{std::this_thread::get_id()});
  EXPECT_EQ(taken[1], std::vector<int>(300, 1));

  // Whole tensors: each once, on the worker whose share holds its first element.
  std::map<size_t, std::thread::id> whole;
  shards.run_over_tensors(
      tensors,
      [&](size_t tensor) {
        std::lock_guard<std::mutex> lock(mutex);
        EXPECT_TRUE(whole.emplace(tensor, std::this_thread::get_id()).second) << "tensor " << tensor << " twice";
      },
      256);
  EXPECT_EQ(whole.size(), tensors.size());
  EXPECT_NE(whole[0], whole[4]);  // elements 0 and 3,301 of 3,901: the first share's and the last's
}

Config small_vit(const std::string& extra = "", const std::string& dim = "32", const std::string& grad_clip = "1.0") {
  TempDir dir;
  write_file(dir / "config.yaml", "model: {image_size: 28, patch_size: 7, in_chans: 1, num_classes: 10, dim: " + dim +
                                      ", depth: 2, heads: 2" + extra +
                                      "}\ntrain: {amp: none, label_smoothing: 0.1, grad_clip: " + grad_clip + "}\n");
  return load_config(dir / "config.yaml", {});
}

TrainingStep::MicroBatch classification_batch() {
  TrainingStep::MicroBatch batch;
  batch.inputs = torch::randn({9, 1, 28, 28});
  batch.labels = torch::randint(10, {9}, torch::kLong);
  return batch;
}

// Six 64 px images with 2, 1, 0, 0, 1 and 3 objects: three slices of two images, one of them without
// objects.
TrainingStep::MicroBatch detection_batch() {
  TrainingStep::MicroBatch batch;
  batch.inputs = torch::randn({6, 3, 64, 64});
  const int64_t objects = 7;
  batch.objects = {torch::cat({torch::rand({objects, 2}) * 0.6 + 0.2, torch::rand({objects, 2}) * 0.2 + 0.1}, 1),
                   torch::randint(4, {objects}, torch::kLong),
                   {2, 1, 0, 0, 1, 3}};
  return batch;
}

// The gradients and loss of one step of a fresh seed-0 model on fixed batches, after
// `earlier_steps` optimizer steps, of `micro_batches` micro-batches, and the parameters it leaves.
struct StepResult {
  std::vector<torch::Tensor> gradients;
  std::vector<torch::Tensor> parameters;
  double loss = 0.0;
  bool shards_used = false;
};
StepResult one_step(const Config& config, const BatchShards& shards, int threads, int earlier_steps = 0,
                    int micro_batches = 1,
                    const std::function<TrainingStep::MicroBatch()>& make_batch = classification_batch) {
  const int previous_threads = at::get_num_threads();
  at::set_num_threads(threads);
  torch::manual_seed(0);
  auto model = models::build_model(config.model.options);
  model->train();
  auto optimizer = make_optimizer(model, config.train, shards);
  DataParallel single_process(RankEnvironment{}, config.train.distributed, torch::kCPU);
  TrainingStep step(model, *optimizer, nullptr, single_process, config.train, torch::kCPU, nullptr, shards);
  const auto accumulate = [&](bool completes_step) { step.accumulate(make_batch(), completes_step); };
  for (int earlier = 0; earlier < earlier_steps; ++earlier) {
    accumulate(true);
    step.apply(1e-3, false);
  }
  for (int micro_batch = 1; micro_batch <= micro_batches; ++micro_batch) accumulate(micro_batch == micro_batches);
  StepResult result;
  result.shards_used = step.shards() > 1;
  for (const auto& parameter : model->parameters()) result.gradients.push_back(parameter.grad().clone());
  result.loss = step.apply(1e-3, false).mean_loss.item<double>();
  for (const auto& parameter : model->parameters()) result.parameters.push_back(parameter.detach().clone());
  at::set_num_threads(previous_threads);
  return result;
}

// The slices' gradients are the whole batch's, but for rounding.
void expect_the_same_gradients(const StepResult& sliced, const StepResult& whole) {
  ASSERT_EQ(whole.gradients.size(), sliced.gradients.size());
  for (size_t i = 0; i < whole.gradients.size(); ++i) {
    EXPECT_TRUE(torch::allclose(sliced.gradients[i], whole.gradients[i], 1e-4, 1e-6)) << "gradient " << i;
  }
}

TEST(BatchShards, ATrainingStepInSlicesGivesTheWholeBatchsGradients) {
  const auto config = small_vit();
  const auto whole = one_step(config, BatchShards(), 1);
  const auto sliced = one_step(config, BatchShards(3), 2);
  ASSERT_TRUE(sliced.shards_used);
  expect_the_same_gradients(sliced, whole);
  EXPECT_NEAR(sliced.loss, whole.loss, 1e-6);
  // The same slices whatever the caller's own thread count: the same numbers, bit for bit.
  const auto one_thread = one_step(config, BatchShards(3), 1);
  for (size_t i = 0; i < whole.gradients.size(); ++i) {
    EXPECT_TRUE(torch::equal(one_thread.gradients[i], sliced.gradients[i])) << "gradient " << i;
  }
  EXPECT_EQ(one_thread.loss, sliced.loss);
}

TEST(BatchShards, AStepUpdatesTheParametersBitForBitOnOneThreadOrTwo) {
  // The slices set a step's numbers, not the threads that run them: the step's work outside
  // them (gradient clipping's norms, the optimizer) must not depend on LibTorch's thread count
  // either. At dim 128 qkv's 49,152 weights pass ATen's grain size, past which its reductions
  // are divided among the threads; a clip of 0.01 scales every step's gradients.
  const auto config = small_vit("", "128", "0.01");
  const auto one_thread = one_step(config, BatchShards(2), 1, 2);
  const auto two_threads = one_step(config, BatchShards(2), 2, 2);
  ASSERT_TRUE(two_threads.shards_used);
  double squared_norm = 0.0;
  for (const auto& gradient : two_threads.gradients) squared_norm += gradient.pow(2).sum().item<double>();
  ASSERT_GT(std::sqrt(squared_norm), 0.1);  // the clip scales the step
  for (size_t i = 0; i < one_thread.parameters.size(); ++i) {
    EXPECT_TRUE(torch::equal(one_thread.parameters[i], two_threads.parameters[i])) << "parameter " << i;
  }
  EXPECT_EQ(one_thread.loss, two_threads.loss);
}

TEST(BatchShards, ADetectorsStepInSlicesGivesTheWholeBatchsGradients) {
  // Each slice matches its own images' objects and divides its sums by the whole batch's
  // normalizers; one slice has no objects.
  TempDir dir;
  write_file(dir / "config.yaml", "model: {preset: detr_shapes_64}\ntrain: {amp: none, grad_clip: 0.1}\n");
  const auto config = load_config(dir / "config.yaml", {});
  const auto whole = one_step(config, BatchShards(), 1, 0, 1, detection_batch);
  const auto sliced = one_step(config, BatchShards(3), 2, 0, 1, detection_batch);
  ASSERT_TRUE(sliced.shards_used);
  expect_the_same_gradients(sliced, whole);
  EXPECT_NEAR(sliced.loss, whole.loss, 1e-6 * whole.loss);
}

TEST(BatchShards, LaterStepsAndAccumulatedMicroBatchesInSlicesGiveTheWholeBatchsGradients) {
  // The slices overwrite the last step's gradients rather than add to zeroed ones: nothing of an
  // earlier step may remain, and the micro-batches of one step must add up.
  const auto config = small_vit();
  const auto whole = one_step(config, BatchShards(), 1, 2, 2);
  const auto sliced = one_step(config, BatchShards(3), 2, 2, 2);
  ASSERT_TRUE(sliced.shards_used);
  expect_the_same_gradients(sliced, whole);
  const auto first_micro_batch = one_step(config, BatchShards(3), 2, 2, 1);
  double difference = 0.0;
  for (size_t i = 0; i < whole.gradients.size(); ++i) {
    difference += (first_micro_batch.gradients[i] - sliced.gradients[i]).abs().sum().item<double>();
  }
  EXPECT_GT(difference, 1e-3);  // the second micro-batch's gradients were added
}

TEST(BatchShards, ALargeModelsGradientSumsOnTheWorkersGiveTheWholeBatchsGradients) {
  // At dim 256 the model has 1.6 M parameters, three shares of the passes between the slices: the
  // sums overwrite the last step's gradients and add the micro-batches up on the workers, whatever
  // the caller's thread count. Mean pooling: every product multiplies all tokens' rows, which
  // OpenBLAS rounds alike in a slice and in the whole batch. A class-token head's last block
  // multiplies one row per image, which OpenBLAS's small-matrix kernels round differently for 3
  // rows and for 9; AdamW's step between the two gradients takes that past this tolerance (1.1e-6
  // where it allows 1e-6, against 1.2e-8 with mean pooling).
  const auto config = small_vit(", pool: mean", "256", "0.01");
  const auto whole = one_step(config, BatchShards(), 1, 1, 2);
  const auto sliced = one_step(config, BatchShards(3), 2, 1, 2);
  ASSERT_TRUE(sliced.shards_used);
  expect_the_same_gradients(sliced, whole);
  const auto one_thread = one_step(config, BatchShards(3), 1, 1, 2);
  for (size_t i = 0; i < sliced.parameters.size(); ++i) {
    EXPECT_TRUE(torch::equal(one_thread.gradients[i], sliced.gradients[i])) << "gradient " << i;
    EXPECT_TRUE(torch::equal(one_thread.parameters[i], sliced.parameters[i])) << "parameter " << i;
  }
}

TEST(BatchShards, ClippingAndTheEmaOnTheWorkersGiveOnePassesBits) {
  const vit::testing::IntraOpThreads one_thread(1);
  const auto config = small_vit("", "256");
  torch::manual_seed(0);
  auto model = models::build_model(config.model.options);
  const auto parameters = model->parameters();
  for (auto& parameter : parameters) parameter.mutable_grad() = torch::randn_like(parameter);
  std::vector<torch::Tensor> gradients;
  for (const auto& parameter : parameters) gradients.push_back(parameter.grad().clone());
  // Each gradient's norm on a worker, then its rows scaled there; against one pass on this thread.
  const BatchShards shards(3);
  clip_gradient_norm(parameters, 0.5, shards);
  std::vector<torch::Tensor> clipped_on_workers;
  double squared_norm = 0.0;
  for (size_t i = 0; i < parameters.size(); ++i) {
    clipped_on_workers.push_back(parameters[i].grad().clone());
    squared_norm += clipped_on_workers.back().pow(2).sum().item<double>();
    parameters[i].mutable_grad().copy_(gradients[i]);
  }
  EXPECT_NEAR(std::sqrt(squared_norm), 0.5, 1e-4);
  clip_gradient_norm(parameters, 0.5);
  for (size_t i = 0; i < parameters.size(); ++i) {
    EXPECT_TRUE(torch::equal(clipped_on_workers[i], parameters[i].grad())) << "gradient " << i;
  }

  // The EMA's elements on the workers against LibTorch's multi-tensor update of all of them.
  ModelEma ema(model, models::build_model(config.model.options), 0.9);
  torch::NoGradGuard no_grad;
  for (auto& parameter : parameters) parameter.add_(torch::randn_like(parameter));
  auto expected = ema.model()->parameters();
  for (auto& tensor : expected) tensor = tensor.clone();
  torch::_foreach_mul_(expected, 0.9);
  torch::_foreach_add_(expected, parameters, 1.0 - 0.9);
  ema.update(model, shards);
  const auto averaged = ema.model()->parameters();
  for (size_t i = 0; i < averaged.size(); ++i) EXPECT_TRUE(torch::equal(averaged[i], expected[i])) << "parameter " << i;
}

TEST(BatchShards, SlicesOfAModelThatDrawsRandomNumbersDrawReproducibly) {
  // Two runs of the same step, whose slices race each other differently: each draws from its own
  // generator.
  for (const std::string drops : {", drop_path: 0.3", ", dropout: 0.3, attn_dropout: 0.3"}) {
    const auto config = small_vit(drops);
    const auto one_thread = one_step(config, BatchShards(3), 1);
    const auto two_threads = one_step(config, BatchShards(3), 2);
    ASSERT_TRUE(two_threads.shards_used) << drops;
    for (size_t i = 0; i < one_thread.gradients.size(); ++i) {
      EXPECT_TRUE(torch::equal(one_thread.gradients[i], two_threads.gradients[i])) << drops << ", gradient " << i;
    }
    EXPECT_EQ(one_thread.loss, two_threads.loss) << drops;
    // The layers do drop: the gradients are not the deterministic model's.
    const auto deterministic = one_step(small_vit(), BatchShards(3), 2);
    double difference = 0.0, size = 0.0;
    for (size_t i = 0; i < deterministic.gradients.size(); ++i) {
      difference += (two_threads.gradients[i] - deterministic.gradients[i]).norm().item<double>();
      size += deterministic.gradients[i].norm().item<double>();
    }
    EXPECT_GT(difference, 0.1 * size) << drops;
  }
}

}  // namespace
}  // namespace vit::app
