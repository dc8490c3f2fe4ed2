#include "app/distributed/distributed.h"
#include "app/config/config.h"
#include "app/distributed/launcher.h"
#include "app/io/checkpoint.h"
#include "models/core/registry.h"
#include "models/vit/vision_transformer.h"
#include "support/run_support.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/adamw.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <thread>

namespace vit::testing {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kSteps = 20;
constexpr int64_t kGlobalBatch = 32;
constexpr int64_t kMicroBatches = 2;  // gradient accumulation inside every step

// AdamW steps (in float64) over a fixed stream of global batches; rank r of `world` takes the rows p with
// p % world == r of every micro-batch, as the loader's sampler does. Returns the parameters.
std::vector<torch::Tensor> train(app::DataParallel* parallel, int64_t rank, int64_t world,
                                 const std::vector<torch::Tensor>& initial) {
  models::VisionTransformer model(small_vit(8, 4, 1, 3, 16, 2, 2));
  model->to(torch::kFloat64);
  {
    // Ranks other than 0 start from other weights: the broadcast must replace them.
    torch::NoGradGuard no_grad;
    auto parameters = model->parameters();
    for (size_t i = 0; i < parameters.size(); ++i) parameters[i].copy_(initial[i] + (rank == 0 ? 0.0 : 0.5));
  }
  if (parallel != nullptr) {
    parallel->broadcast_from_main(*model);
    parallel->attach_gradient_buckets(model->parameters());
  }
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(3e-3).weight_decay(0.05));
  const auto generator = at::detail::createCPUGenerator(7);
  const auto images = torch::randn({kSteps * kGlobalBatch, 1, 8, 8}, generator).to(torch::kFloat64);
  const auto labels = torch::randint(3, {kSteps * kGlobalBatch}, generator);
  const int64_t micro = kGlobalBatch / kMicroBatches;
  for (int64_t step = 0; step < kSteps; ++step) {
    for (int64_t m = 0; m < kMicroBatches; ++m) {
      const auto rows = torch::arange(step * kGlobalBatch + m * micro + rank, step * kGlobalBatch + (m + 1) * micro,
                                      world, torch::kInt64);
      if (parallel != nullptr) parallel->synchronize_next_backward(m + 1 == kMicroBatches);
      const auto loss =
          torch::nn::functional::cross_entropy(model(images.index_select(0, rows)), labels.index_select(0, rows));
      (loss / static_cast<double>(kMicroBatches)).backward();
    }
    if (parallel != nullptr) parallel->finish_gradient_sync();
    optimizer.step();
    optimizer.zero_grad();
  }
  std::vector<torch::Tensor> parameters;
  for (const auto& parameter : model->parameters()) parameters.push_back(parameter.detach().clone());
  return parameters;
}

double max_difference(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double worst = 0.0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, (a[i] - b[i]).abs().max().item<double>());
  return worst;
}

TEST(DataParallel, TwoRanksOfHalfTheBatchMatchOneRankOfTheWholeBatch) {
  torch::manual_seed(100);
  std::vector<torch::Tensor> initial;
  for (const auto& parameter : models::VisionTransformer(small_vit(8, 4, 1, 3, 16, 2, 2))->parameters()) {
    initial.push_back(parameter.detach().to(torch::kFloat64));
  }
  const auto single = train(nullptr, 0, 1, initial);
  app::DistributedConfig config;
  config.bucket_mb = 0.004;  // ~1,000 floats: several buckets, launched while backward runs
  config.timeout_s = 60;
  const int port = app::free_loopback_port();
  std::vector<std::vector<torch::Tensor>> ranks(2);
  std::vector<std::string> errors(2);
  std::vector<std::thread> threads;
  for (int64_t rank = 0; rank < 2; ++rank) {
    threads.emplace_back([&, rank] {
      try {
        app::DataParallel parallel({rank, 2, rank, "127.0.0.1", port}, config, torch::kCPU);
        ranks[rank] = train(&parallel, rank, 2, initial);
      } catch (const std::exception& error) {
        errors[rank] = error.what();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_EQ(errors[0], "");
  ASSERT_EQ(errors[1], "");
  EXPECT_EQ(max_difference(ranks[0], ranks[1]), 0.0);  // bit-identical across ranks
  // In float64 the only difference left is the order of the sums: far below the 1e-5 that the
  // float32 end-to-end test below allows.
  EXPECT_LE(max_difference(ranks[0], single), 1e-9);
  EXPECT_GT(max_difference(single, train(nullptr, 1, 1, initial)), 1e-3);  // the comparison can fail
}

TEST(DataParallel, SumsAcrossRanksAndAgreesOnStopping) {
  const int port = app::free_loopback_port();
  std::vector<double> losses(2);
  std::array<bool, 2> stops{};  // not vector<bool>: its packed bits would make the two threads' writes race
  std::vector<int64_t> sums(2);
  std::vector<std::thread> threads;
  for (int64_t rank = 0; rank < 2; ++rank) {
    threads.emplace_back([&, rank] {
      app::DataParallel parallel({rank, 2, rank, "127.0.0.1", port}, {}, torch::kCPU);
      const auto summary = parallel.summarize_step(torch::full({}, rank == 0 ? 1.0f : 3.0f), rank == 1);
      losses[rank] = summary.mean_loss.item<double>();
      stops[rank] = summary.stop_requested;
      auto counts = torch::tensor({rank + 1}, torch::kInt64);
      parallel.all_reduce_sum(counts);
      sums[rank] = counts.item<int64_t>();
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(losses, (std::vector<double>{2.0, 2.0}));
  EXPECT_EQ(stops, (std::array<bool, 2>{true, true}));
  EXPECT_EQ(sums, (std::vector<int64_t>{3, 3}));
}

// Parameters of a run directory's last.ckpt.
std::vector<torch::Tensor> checkpoint_parameters(const fs::path& run) {
  app::CheckpointReader reader(run / "last.ckpt");
  const auto config = app::load_config_text(reader.config_yaml(), "checkpoint", {});
  auto model = models::build_model(config.model.options);
  reader.load_model(model, false);
  std::vector<torch::Tensor> parameters;
  for (const auto& parameter : model->parameters()) parameters.push_back(parameter.detach().clone());
  return parameters;
}

// Two runs' steps.csv: `steps` rows each, every loss within 1e-5 of the other run's.
void expect_close_losses(const fs::path& run, const fs::path& other, size_t steps) {
  const auto losses = loss_column(run / "steps.csv");
  const auto other_losses = loss_column(other / "steps.csv");
  ASSERT_EQ(losses.size(), steps);
  ASSERT_EQ(other_losses.size(), steps);
  const auto value = [](const std::string& cell) { return std::stod(cell.substr(cell.find(':') + 1)); };
  for (size_t i = 0; i < steps; ++i) EXPECT_NEAR(value(losses[i]), value(other_losses[i]), 1e-5) << i;
}

std::string deterministic_run(const TempDir& dir) {
  return "train --config " + tiny_config(dir) +
         " --set model.dropout=0 --set model.drop_path=0 --set train.batch_size=32 --set train.grad_accum_steps=2"
         " --set train.max_steps=20 --set train.epochs=20 --set train.amp=none --threads 1";
}

TEST(DistributedTrain, NprocTwoTrainsLikeOneProcessWithTheSameGlobalBatch) {
  TempDir dir;
  const auto command = deterministic_run(dir);
  const auto single = run_vit(command + " --output " + (dir / "single").string());
  ASSERT_EQ(single.exit_code, 0) << single.err;
  const auto multi = run_vit(command + " --nproc 2 --output " + (dir / "multi").string());
  ASSERT_EQ(multi.exit_code, 0) << multi.err;
  EXPECT_NE(multi.err.find("data-parallel: 2 ranks (gloo), 16 images per rank and step"), std::string::npos)
      << multi.err;
  EXPECT_EQ(multi.err.find("rank 1"), std::string::npos) << multi.err;  // rank 1 logs no info lines

  EXPECT_LE(max_difference(checkpoint_parameters(dir / "single"), checkpoint_parameters(dir / "multi")), 1e-5);
  expect_close_losses(dir / "single", dir / "multi", 20);
  // Validation metrics are reduced over both ranks' shards: the same numbers as one process.
  EXPECT_EQ(read_file(dir / "single" / "metrics.csv").substr(0, 60),
            read_file(dir / "multi" / "metrics.csv").substr(0, 60));
  // Only rank 0 writes TensorBoard events: one file for the job.
  int event_files = 0;
  for (const auto& entry : fs::directory_iterator(dir / "multi")) {
    event_files += entry.path().filename().string().find("tfevents") != std::string::npos ? 1 : 0;
  }
  EXPECT_EQ(event_files, 1);

  // Resuming the 2-rank run in one process (same global batch) continues from its step.
  const auto resumed = run_vit("train --resume " + (dir / "multi").string() + " --set train.max_steps=24 --threads 1");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(loss_column(dir / "multi" / "steps.csv").size(), 24u);
}

// Each rank cuts its micro-batches into batch slices: the slices' gradients, added on the rank's
// workers, reach the all-reduce through .grad, micro-batches accumulating there.
TEST(DistributedTrain, RanksInBatchSlicesTrainLikeOneProcess) {
  TempDir dir;
  auto command = deterministic_run(dir);
  command.replace(command.rfind("--threads 1"), std::string("--threads 1").size(), "--threads 2");
  const auto single = run_vit(command + " --output " + (dir / "single").string());
  ASSERT_EQ(single.exit_code, 0) << single.err;
  const auto multi = run_vit(command + " --nproc 2 --output " + (dir / "multi").string());
  ASSERT_EQ(multi.exit_code, 0) << multi.err;
  EXPECT_NE(multi.err.find("each micro-batch runs as 2 slices"), std::string::npos) << multi.err;
  EXPECT_LE(max_difference(checkpoint_parameters(dir / "single"), checkpoint_parameters(dir / "multi")), 1e-5);
  expect_close_losses(dir / "single", dir / "multi", 20);
}

// Each rank's teacher answers for its shard; the job still trains like one process.
TEST(DistributedTrain, DistillationTrainsLikeOneProcess) {
  TempDir dir;
  const auto teacher =
      run_vit(deterministic_run(dir) + " --set train.max_steps=6 --output " + (dir / "teacher").string());
  ASSERT_EQ(teacher.exit_code, 0) << teacher.err;
  const auto command = deterministic_run(dir) + " --set train.max_steps=6 --set model.distilled=true" +
                       " --set train.distillation.type=soft --set train.distillation.tau=2" +
                       " --set train.distillation.teacher=" + (dir / "teacher").string();
  const auto single = run_vit(command + " --output " + (dir / "single").string());
  ASSERT_EQ(single.exit_code, 0) << single.err;
  const auto multi = run_vit(command + " --nproc 2 --output " + (dir / "multi").string());
  ASSERT_EQ(multi.exit_code, 0) << multi.err;
  expect_close_losses(dir / "single", dir / "multi", 6);
  EXPECT_LE(max_difference(checkpoint_parameters(dir / "single"), checkpoint_parameters(dir / "multi")), 1e-5);
}

// MAE: each image's mask comes from its dataset index, so the ranks' shares hide what one process
// hides. SGD: the attention's key biases get gradients that are 0 but for rounding, which AdamW
// would scale up to full steps of either sign, so that the two runs' weights would differ by
// rounding amplified rather than by what this test looks for.
TEST(DistributedTrain, MaePretrainingTrainsLikeOneProcess) {
  TempDir dir;
  write_file(dir / "mae.yaml",
             "model: {arch: mae, image_size: 16, patch_size: 4, in_chans: 1, dim: 32, depth: 2, heads: 2,\n"
             "        decoder_dim: 16, decoder_depth: 1, decoder_heads: 2, norm_pix_loss: true}\n" +
                 halves_data(dir) +  // read without its labels
                 "train: {batch_size: 32, grad_accum_steps: 2, max_steps: 6, epochs: 20, lr: 3.0e-3, amp: none,\n"
                 "        optimizer: sgd}\n");
  const auto command = "train --config " + (dir / "mae.yaml").string() + " --threads 1";
  const auto single = run_vit(command + " --output " + (dir / "single").string());
  ASSERT_EQ(single.exit_code, 0) << single.err;
  const auto multi = run_vit(command + " --nproc 2 --output " + (dir / "multi").string());
  ASSERT_EQ(multi.exit_code, 0) << multi.err;
  expect_close_losses(dir / "single", dir / "multi", 6);
  EXPECT_LE(max_difference(checkpoint_parameters(dir / "single"), checkpoint_parameters(dir / "multi")), 1e-5);
}

// Each rank's loader mixes its share of the batch (timm's per-rank batch mode).
TEST(DistributedTrain, MixupReachesEveryRank) {
  TempDir dir;
  const auto command = deterministic_run(dir) + " --set train.max_steps=4 --nproc 2";
  const auto plain = run_vit(command + " --output " + (dir / "plain").string());
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  const auto mixed = run_vit(command + " --set train.mixup.cutmix_alpha=1.0 --output " + (dir / "mixed").string());
  ASSERT_EQ(mixed.exit_code, 0) << mixed.err;
  EXPECT_NE(loss_column(dir / "plain" / "steps.csv"), loss_column(dir / "mixed" / "steps.csv"));
}

TEST(DistributedTrain, RendezvousThatNeverCompletesEndsWithAClearError) {
  TempDir dir;
  const auto start = std::chrono::steady_clock::now();
  const auto result =
      run_vit(deterministic_run(dir) + " --set train.distributed.timeout_s=3 --output " + (dir / "run").string(),
              "RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(app::free_loopback_port()));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_NE(result.err.find("error: rank 0: rendezvous at 127.0.0.1:"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("train.distributed.timeout_s = 3 s"), std::string::npos) << result.err;
  EXPECT_LT(seconds, 30.0);
}

TEST(DistributedTrain, ADeadRankEndsTheJobWithAClearError) {
  TempDir dir;
  const auto command = deterministic_run(dir) + " --set train.max_steps=100000 --set train.epochs=1000" +
                       " --set train.distributed.timeout_s=20 --output " + (dir / "run").string();
  const auto environment =
      "WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(app::free_loopback_port());
  const pid_t rank0 = spawn_vit(command, dir / "rank0.log", "RANK=0 " + environment);
  const pid_t rank1 = spawn_vit(command, dir / "rank1.log", "RANK=1 " + environment);
  // Kill rank 1 once the job is past its first epoch (rank 0 has saved last.ckpt).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline &&
         (!fs::exists(dir / "run" / "last.ckpt") || loss_column(dir / "run" / "steps.csv").size() < 6)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GE(loss_column(dir / "run" / "steps.csv").size(), 6u) << read_file(dir / "rank0.log");
  ::kill(rank1, SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  EXPECT_EQ(wait_exit_code(rank1), 128 + SIGKILL);
  EXPECT_EQ(wait_exit_code(rank0), 1);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  EXPECT_LT(seconds, 25.0);
  const auto log = read_file(dir / "rank0.log");
  EXPECT_NE(log.find("error: rank 0: "), std::string::npos) << log;
  EXPECT_NE(log.find("another rank stopped"), std::string::npos) << log;
  EXPECT_EQ(log.find("terminate called"), std::string::npos) << log;
  // The last checkpoint written before the failure still loads.
  EXPECT_NO_THROW(checkpoint_parameters(dir / "run"));
}

TEST(DistributedTrain, MalformedRankVariablesAreUsageErrors) {
  TempDir dir;
  const auto result = run_vit(deterministic_run(dir), "WORLD_SIZE=two");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("error: environment variable WORLD_SIZE: expected an integer"), std::string::npos)
      << result.err;
  const auto uneven = run_vit(deterministic_run(dir) + " --set train.batch_size=33 --nproc 2");
  EXPECT_EQ(uneven.exit_code, 2);
  EXPECT_NE(uneven.err.find("does not split evenly over 2 ranks"), std::string::npos) << uneven.err;
}

}  // namespace
}  // namespace vit::testing
