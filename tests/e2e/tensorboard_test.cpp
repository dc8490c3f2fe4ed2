// TensorBoard event files, read by a reader that protoc generates from the public .proto
// definitions (tests/e2e/tensorboard), against the run's own metrics.csv and steps.csv.
#include "support/run_support.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <map>
#include <sstream>

namespace vit::testing {
namespace {

namespace fs = std::filesystem;
using Key = std::pair<std::string, int64_t>;  // (tag, step)

struct Events {
  nlohmann::json report;
  std::map<Key, double> scalars;
  std::map<Key, int> files_of;  // which event file (by sorted name) holds each scalar
};

Events read_events(const fs::path& run_dir, const TempDir& dir) {
  const auto out = dir / "events.json";
  const auto command = app::python_interpreter() + " " + std::string(VIT_SOURCE_DIR) +
                       "/tests/e2e/tensorboard/read_events.py " + run_dir.string() + " > " + out.string();
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  Events events;
  events.report = nlohmann::json::parse(read_file(out));
  for (const auto& scalar : events.report["scalars"]) {
    const Key key{scalar[0].get<std::string>(), scalar[1].get<int64_t>()};
    EXPECT_EQ(events.scalars.count(key), 0u) << key.first << " written twice at step " << key.second;
    events.scalars[key] = scalar[2].get<double>();
    events.files_of[key] = scalar[3].get<int>();
  }
  return events;
}

// A CSV file's rows as header -> cell.
std::vector<std::map<std::string, std::string>> csv_rows(const fs::path& file) {
  std::istringstream lines(read_file(file));
  std::string line;
  std::getline(lines, line);
  std::vector<std::string> header;
  std::istringstream names(line);
  for (std::string name; std::getline(names, name, ',');) header.push_back(name);
  std::vector<std::map<std::string, std::string>> rows;
  while (std::getline(lines, line)) {
    std::istringstream cells(line);
    std::map<std::string, std::string> row;
    size_t column = 0;
    for (std::string cell; std::getline(cells, cell, ',') && column < header.size();) row[header[column++]] = cell;
    rows.push_back(row);
  }
  return rows;
}

// The event files hold float32 values of what the CSV files print with 6 to 9 digits.
void expect_scalar(const Events& events, const std::string& tag, int64_t step, const std::string& csv_cell) {
  const auto found = events.scalars.find({tag, step});
  ASSERT_NE(found, events.scalars.end()) << tag << " missing at step " << step;
  const double expected = std::stod(csv_cell);
  EXPECT_NEAR(found->second, expected, 2e-6 * std::max(1.0, std::abs(expected))) << tag << " at step " << step;
}

// Every scalar of the event files equals the CSV files' value, and every value they should hold
// is there: train/* every log_every steps (steps.csv), the epoch scalars per row of metrics.csv.
void expect_events_equal_csv_files(const Events& events, const fs::path& run, int64_t log_every) {
  size_t expected_scalars = 0;
  for (const auto& row : csv_rows(run / "steps.csv")) {
    const int64_t step = std::stoll(row.at("step"));
    if (step % log_every != 0) continue;
    expect_scalar(events, "train/loss", step, row.at("loss"));
    expect_scalar(events, "train/lr", step, row.at("lr"));
    EXPECT_GT(events.scalars.at({"train/images_per_s", step}), 0.0);
    expected_scalars += 3;
  }
  const std::map<std::string, std::string> epoch_tags = {{"train_loss", "train/epoch_loss"},
                                                         {"val_loss", "val/loss"},
                                                         {"val_top1", "val/top1"},
                                                         {"val_top5", "val/top5"},
                                                         {"ema_val_top1", "val/ema_top1"}};
  for (const auto& row : csv_rows(run / "metrics.csv")) {
    for (const auto& [column, tag] : epoch_tags) {
      if (row.count(column) == 0 || row.at(column).empty()) continue;
      expect_scalar(events, tag, std::stoll(row.at("step")), row.at(column));
      ++expected_scalars;
    }
  }
  EXPECT_EQ(events.scalars.size(), expected_scalars);
}

// A run of the tiny config in dir/run.
CommandResult train_tiny(const TempDir& dir, const std::string& options) {
  return run_vit("train --config " + tiny_config(dir) + " --output " + (dir / "run").string() + " " + options);
}

TEST(TensorBoard, EventFilesHoldTheScalarsOfTheCsvFilesAndTheConfusionMatrix) {
  TempDir dir;
  const auto run = dir / "run";
  const auto trained = train_tiny(dir, "--set train.log_every=3 --set train.epochs=2");
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  const auto events = read_events(run, dir);
  ASSERT_EQ(events.report["files"].size(), 1u);
  const auto& file = events.report["files"][0];
  EXPECT_EQ(file["file_version"], "brain.Event:2");
  EXPECT_EQ(file["name"].get<std::string>().rfind("events.out.tfevents.", 0), 0u) << file["name"];
  expect_events_equal_csv_files(events, run, 3);
  EXPECT_EQ(events.scalars.count({"train/loss", 3}), 1u);
  EXPECT_EQ(events.scalars.count({"train/loss", 4}), 0u);  // only every log_every steps

  // One confusion matrix per validation (both epochs), a PNG of the size it says.
  ASSERT_EQ(events.report["images"].size(), 2u);
  for (const auto& image : events.report["images"]) {
    EXPECT_EQ(image[0], "val/confusion");
    EXPECT_GT(image[2].get<int>(), 100);
    EXPECT_GT(image[3].get<int>(), 100);
    EXPECT_EQ(image[4].get<int>(), 3);
    EXPECT_TRUE(image[6].get<bool>());
  }
  EXPECT_EQ(events.report["images"][1][1].get<int64_t>(), 16);  // step of epoch 2's end (8 steps per epoch)
}

TEST(TensorBoard, ResumedRunsAddAFileAndNeverWriteAStepTwice) {
  TempDir dir;
  const auto run = dir / "run";
  // Stopped inside epoch 2, at step 11 of 8 per epoch: no epoch-2 row yet.
  const auto first = train_tiny(dir, "--set train.log_every=1 --stop-after 11");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const auto second = run_vit("train --resume " + run.string());
  ASSERT_EQ(second.exit_code, 0) << second.err;
  auto events = read_events(run, dir);
  ASSERT_EQ(events.report["files"].size(), 2u);
  expect_events_equal_csv_files(events, run, 1);
  EXPECT_EQ(events.files_of.at({"train/loss", 11}), 0);
  EXPECT_EQ(events.files_of.at({"train/loss", 12}), 1);
  EXPECT_EQ(events.files_of.at({"val/top1", 16}), 1);

  // Continued again from the end of epoch 2: what the two files held after step 16 is removed
  // from them, and the third file writes epochs 3 and 4 again.
  const auto third = run_vit("train --resume " + (run / "epoch_0002.ckpt").string());
  ASSERT_EQ(third.exit_code, 0) << third.err;
  events = read_events(run, dir);
  ASSERT_EQ(events.report["files"].size(), 3u);
  expect_events_equal_csv_files(events, run, 1);
  EXPECT_EQ(events.files_of.at({"val/top1", 16}), 1);
  EXPECT_EQ(events.files_of.at({"train/loss", 17}), 2);
  EXPECT_EQ(events.files_of.at({"val/top1", 32}), 2);
  EXPECT_EQ(events.report["images"].size(), 4u);
}

TEST(TensorBoard, OffWritesNoEventFiles) {
  TempDir dir;
  const auto trained = train_tiny(dir, "--set train.tensorboard=false --set train.max_steps=2");
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  const auto run = dir / "run";
  for (const auto& entry : fs::directory_iterator(run)) {
    EXPECT_EQ(entry.path().filename().string().find("tfevents"), std::string::npos) << entry.path();
  }
  EXPECT_TRUE(fs::exists(run / "steps.csv"));
}

}  // namespace
}  // namespace vit::testing
