#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace vit::app {

struct EpochMetrics {
  int64_t epoch = 0;  // 1-based, as shown to people
  int64_t step = 0;
  double train_loss = 0.0;
  std::optional<double> val_loss;
  std::optional<double> val_top1;
  std::optional<double> val_top5;
  double lr = 0.0;
  double images_per_s = 0.0;
  double seconds = 0.0;
  std::optional<double> ema_val_top1;
  std::optional<double> val_map;  // detectors: COCO mAP@[.5:.95] and AP50 of the validation split
  std::optional<double> val_ap50;
  std::optional<double> ema_val_map;
};

// The run's metrics.csv (one row per epoch) and its loss / accuracy / lr plots, rewritten
// atomically after every epoch so an interrupted run never leaves a torn file. A resumed run
// reads the existing rows back and keeps those of epochs before its own.
class MetricsLog {
 public:
  MetricsLog(std::filesystem::path run_dir, int64_t resume_epoch);
  void append(const EpochMetrics& row);

 private:
  void write_plots() const;

  std::filesystem::path run_dir_;
  std::vector<EpochMetrics> rows_;
};

// Per-step losses in steps.csv (step, epoch, loss, lr): appended line by line, trimmed to the
// resumed step when a run continues.
class StepLog {
 public:
  StepLog(const std::filesystem::path& run_dir, int64_t resume_step);
  ~StepLog();
  StepLog(const StepLog&) = delete;
  StepLog& operator=(const StepLog&) = delete;
  void append(int64_t step, int64_t epoch, double loss, double lr);
  // The sum and count of the losses it kept from before the resume for `epoch` (1-based), so a
  // resumed epoch's mean covers all of its steps.
  std::pair<double, int64_t> losses_of_epoch(int64_t epoch) const;

 private:
  int fd_ = -1;
  std::vector<std::pair<int64_t, double>> kept_losses_;  // (epoch, loss)
};

}  // namespace vit::app
