#include "app/train/tensorboard_log.h"

#include "app/io/checkpoint.h"
#include "app/train/evaluation.h"
#include "app/viz/plot.h"

#include <algorithm>

namespace vit::app {
namespace {

// The tags written once per logged step; every other tag belongs to an epoch.
constexpr const char* kLossTag = "train/loss";
constexpr const char* kLrTag = "train/lr";
constexpr const char* kImagesPerSecondTag = "train/images_per_s";

bool is_step_tag(const std::string& tag) { return tag == kLossTag || tag == kLrTag || tag == kImagesPerSecondTag; }

const std::filesystem::path& after_trimming(const std::filesystem::path& run_dir, const TrainingState* resumed_at) {
  if (resumed_at != nullptr) {
    // A checkpoint taken inside an epoch (batch_in_epoch > 0) is followed by that epoch's end
    // again, at this step or later: its row is written anew.
    const bool epoch_done = resumed_at->batch_in_epoch == 0;
    const int64_t step = resumed_at->step;
    filter_event_files(run_dir, [&](const EventHeader& event) {
      if (event.tags.empty()) return true;
      const bool per_step = std::all_of(event.tags.begin(), event.tags.end(), is_step_tag);
      return per_step ? event.step <= step : event.step < step || (event.step == step && epoch_done);
    });
  }
  return run_dir;
}

}  // namespace

TensorBoardLog::TensorBoardLog(const std::filesystem::path& run_dir, const TrainingState* resumed_at)
    : writer_(after_trimming(run_dir, resumed_at)) {}

void TensorBoardLog::log_step(int64_t step, double loss, double lr, double images_per_s) {
  writer_.add_scalar(kLossTag, step, loss);
  writer_.add_scalar(kLrTag, step, lr);
  writer_.add_scalar(kImagesPerSecondTag, step, images_per_s);
}

void TensorBoardLog::log_epoch(const EpochMetrics& row, const EvalResult* validation,
                               const std::vector<std::string>& class_names) {
  writer_.add_scalar("train/epoch_loss", row.step, row.train_loss);
  if (row.val_loss) writer_.add_scalar("val/loss", row.step, *row.val_loss);
  if (row.val_top1) writer_.add_scalar("val/top1", row.step, *row.val_top1);
  if (row.val_top5) writer_.add_scalar("val/top5", row.step, *row.val_top5);
  if (row.ema_val_top1) writer_.add_scalar("val/ema_top1", row.step, *row.ema_val_top1);
  if (row.val_map) writer_.add_scalar("val/map", row.step, *row.val_map);
  if (row.val_ap50) writer_.add_scalar("val/ap50", row.step, *row.val_ap50);
  if (row.ema_val_map) writer_.add_scalar("val/ema_map", row.step, *row.ema_val_map);
  if (validation != nullptr) {
    const auto image = confusion_heatmap(validation->confusion_counts(), class_names);
    writer_.add_image("val/confusion", row.step, png_bytes(image), image.rows, image.cols, 3);
  }
}

}  // namespace vit::app
