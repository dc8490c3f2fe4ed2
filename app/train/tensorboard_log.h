#pragma once

#include "app/io/event_file.h"
#include "app/train/metrics_log.h"

#include <filesystem>
#include <string>
#include <vector>

namespace vit::app {

struct EvalResult;
struct TrainingState;

// A training run's TensorBoard view (`tensorboard --logdir runs`), beside metrics.csv and
// steps.csv and equal to them: per logged step train/loss, train/lr and train/images_per_s; per
// epoch train/epoch_loss, val/loss, val/top1, val/top5, val/ema_top1 (accuracies as fractions,
// like metrics.csv) at the epoch's last step, and the validation confusion matrix as an image.
class TensorBoardLog {
 public:
  // A resumed run (`resumed_at` not null) opens a new file after removing from the earlier ones
  // what it is about to write again: step scalars after the checkpoint's step, and the scalars of
  // an epoch that metrics.csv drops as well (one stopped part-way at train.max_steps or a signal).
  TensorBoardLog(const std::filesystem::path& run_dir, const TrainingState* resumed_at);

  void log_step(int64_t step, double loss, double lr, double images_per_s);
  void log_epoch(const EpochMetrics& row, const EvalResult* validation, const std::vector<std::string>& class_names);

 private:
  EventFileWriter writer_;
};

}  // namespace vit::app
