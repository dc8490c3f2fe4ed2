// Faults that must not lose work: kill -9 at any moment, a full disk while saving, a NaN loss;
// and the determinism that makes "resume" mean "continue the same run".
#include "app/io/checkpoint.h"
#include "support/robustness_support.h"
#include "support/run_support.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <random>
#include <sstream>
#include <thread>

namespace vit::testing {
namespace {

namespace fs = std::filesystem;

// Every line ends with a newline and has the header's number of fields.
void expect_whole_csv_lines(const fs::path& file) {
  if (!fs::exists(file)) return;
  const auto text = read_file(file);
  ASSERT_FALSE(text.empty()) << file;
  EXPECT_EQ(text.back(), '\n') << file << " ends in a torn line";
  std::istringstream lines(text);
  std::string line;
  std::getline(lines, line);
  const auto fields = std::count(line.begin(), line.end(), ',');
  while (std::getline(lines, line))
    EXPECT_EQ(std::count(line.begin(), line.end(), ','), fields) << file << ": " << line;
}

void expect_no_temporaries(const fs::path& run) {
  for (const auto& entry : fs::directory_iterator(run)) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << entry.path() << " left behind";
  }
}

TEST(Faults, KillNineAtRandomMomentsNeverLosesTheRun) {
  TempDir dir;
  // 160 steps: long enough (seconds) for kills between 0.3 and 2.5 s after each start to land.
  const auto config = tiny_config(dir) + " --set train.epochs=20 --set train.checkpoint_every_steps=1";
  const auto straight = dir / "straight";
  ASSERT_EQ(run_vit("train --config " + config + " --output " + straight.string()).exit_code, 0);

  const auto run = dir / "run";
  std::mt19937 random(2024);
  std::uniform_int_distribution<int> delay_ms(300, 2500);
  int64_t last_step = 0;
  for (int kill = 0; kill < 10; ++kill) {
    // What a preemptible job runs each time: continue if there is a checkpoint, else start.
    const auto pid =
        spawn_vit("train --config " + config + " --output " + run.string() + " --resume auto", dir / "log");
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(random)));
    ::kill(pid, SIGKILL);
    const int exit_code = wait_exit_code(pid);
    if (exit_code == 0) break;  // it finished before the kill
    EXPECT_EQ(exit_code, 128 + SIGKILL) << read_file(dir / "log");
    if (fs::exists(run / "last.ckpt")) {
      app::CheckpointReader checkpoint(run / "last.ckpt");  // throws if torn
      EXPECT_GE(checkpoint.state().step, last_step);
      last_step = checkpoint.state().step;
    }
    expect_whole_csv_lines(run / "metrics.csv");
    expect_whole_csv_lines(run / "steps.csv");
  }
  EXPECT_GT(last_step, 0) << "no kill landed after the first checkpoint";
  const auto finished = run_vit("train --resume " + run.string());
  ASSERT_EQ(finished.exit_code, 0) << finished.err;
  EXPECT_EQ(loss_column(run / "steps.csv"), loss_column(straight / "steps.csv"));
  expect_whole_csv_lines(run / "metrics.csv");
  EXPECT_EQ(count_lines(read_file(run / "metrics.csv")), 21u);
  expect_no_temporaries(run);
}

TEST(Faults, FullDiskDuringACheckpointSaveKeepsThePreviousCheckpoint) {
  TempDir dir;
  const auto run = dir / "run";
  const auto config = tiny_config(dir);
  ASSERT_EQ(run_vit("train --config " + config + " --set train.epochs=1 --output " + run.string()).exit_code, 0);
  const auto before = snapshot(run);
  // A 64 KiB file-size limit: the step log and metrics fit, no checkpoint does.
  const auto result = run_vit("train --resume " + run.string() + " --set train.epochs=2", "ulimit -f 128;");
  expect_clean_failure(result, 1, {run.string(), ".ckpt"});
  for (const auto* checkpoint : {"last.ckpt", "best.ckpt", "epoch_0001.ckpt"}) {
    EXPECT_EQ(read_file(run / checkpoint), before.at(run / checkpoint)) << checkpoint;
  }
  expect_no_temporaries(run);
  const auto resumed = run_vit("train --resume " + run.string() + " --set train.epochs=2");
  EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
}

TEST(Faults, NonFiniteLossStopsWithAClearMessageKeepingTheLastGoodCheckpoint) {
  TempDir dir;
  const auto run = dir / "run";
  const auto result =
      run_vit("train --config " + tiny_config(dir) + " --set train.checkpoint_every_steps=2 --output " + run.string(),
              "VIT_INJECT_NAN_AT_STEP=7");
  expect_clean_failure(result, 1,
                       {"loss is nan at epoch 1, step 7: training stopped; the last good checkpoint is " +
                        (run / "last.ckpt").string()});
  // last.ckpt holds step 6, and training goes on from it.
  const auto resumed = run_vit("train --resume " + run.string() + " --stop-after 1");
  EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("resuming " + (run / "last.ckpt").string() + " at epoch 1, batch 6, step 6"),
            std::string::npos)
      << resumed.err;
}

TEST(Determinism, SameSeedAndThreadCountGiveIdenticalLosses) {
  TempDir dir;
  const auto config = tiny_config(dir) + " --set train.epochs=2 --threads 2";
  ASSERT_EQ(run_vit("train --config " + config + " --output " + (dir / "a").string()).exit_code, 0);
  ASSERT_EQ(run_vit("train --config " + config + " --output " + (dir / "b").string()).exit_code, 0);
  ASSERT_EQ(run_vit("train --config " + config + " --seed 5 --output " + (dir / "c").string()).exit_code, 0);
  const auto losses = loss_column(dir / "a" / "steps.csv");
  ASSERT_EQ(losses.size(), 16u);
  EXPECT_EQ(loss_column(dir / "b" / "steps.csv"), losses);
  EXPECT_NE(loss_column(dir / "c" / "steps.csv"), losses);
}

}  // namespace
}  // namespace vit::testing
