#pragma once

#include "models/core/image_model.h"

#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace vit::app {

class ChecksummedFile;
class LossScaler;
class ModelEma;

constexpr uint32_t kCheckpointFormatVersion = 1;

// Where training stands; a checkpoint taken mid-epoch resumes at batch_in_epoch.
struct TrainingState {
  int64_t epoch = 0;
  int64_t batch_in_epoch = 0;
  int64_t step = 0;  // optimizer steps so far
  double best_top1 = -1.0;
};

struct CheckpointContents {
  models::ImageModel* model = nullptr;
  torch::optim::Optimizer* optimizer = nullptr;  // may be null
  ModelEma* ema = nullptr;                       // may be null
  const LossScaler* loss_scaler = nullptr;       // may be null; saved when enabled (fp16)
  std::string config_yaml;                       // the effective config
  std::vector<std::string> class_names;
  std::vector<int64_t> category_ids;  // the data's own class ids (COCO); empty for numbered classes
  TrainingState state;
  torch::Device device{torch::kCPU};  // whose random generator state is saved with the CPU's
  std::string teacher_fingerprint;    // train.distillation's teacher file; empty without one
};

// The optimizer's state as LibTorch's Optimizer::save lays it out (states of AdamW and SGD), with
// each parameter's state named by its position in the optimizer and written in that order, where
// LibTorch's save named them by their tensor's address in hash-map order (so that two identical
// runs wrote different bytes). Loading matches the states to the parameters by position through
// each group's list of names, of either form, without reading the names as numbers (LibTorch
// 2.x's load parses them as decimal addresses, and would read 1.13's hexadecimal ones all as 0).
// The groups' saved options are not read back, as LibTorch 1.13's load does not: the config a run
// resumes with sets them. Throws c10::Error where the archive does not fit the optimizer.
void save_optimizer_state(torch::serialize::OutputArchive& archive, const torch::optim::Optimizer& optimizer);
void load_optimizer_state(torch::serialize::InputArchive& archive, torch::optim::Optimizer& optimizer);

// Writes one file atomically: a temporary beside `file`, flushed to disk, then renamed over it,
// so a crash or a full disk never leaves a torn checkpoint and the previous one stays intact.
// Throws std::runtime_error naming the file when it cannot be written.
void save_checkpoint(const std::filesystem::path& file, const CheckpointContents& contents);

// A checkpoint opened for reading. Throws data::DataError naming the file when it is not a
// vitcpp checkpoint (truncated, damaged: its CRC-32 is checked before LibTorch reads it), or was
// written by a newer format version.
class CheckpointReader {
 public:
  explicit CheckpointReader(const std::filesystem::path& file);
  ~CheckpointReader();

  const std::filesystem::path& file() const { return file_; }
  const std::string& config_yaml() const { return config_yaml_; }
  const std::vector<std::string>& class_names() const { return class_names_; }
  // Empty for numbered classes and for checkpoints of releases before detection results named them.
  const std::vector<int64_t>& category_ids() const { return category_ids_; }
  const TrainingState& state() const { return state_; }
  bool has_ema() const { return has_ema_; }
  // The distillation teacher's file_fingerprint; empty for runs without one (and earlier releases).
  const std::string& teacher_fingerprint() const { return teacher_fingerprint_; }

  // The model weights (or the EMA weights); a data::DataError when they do not fit `model`.
  void load_model(models::ImageModel& model, bool ema);
  // The weights of a model of another architecture that shares tensors with `model` by name (an
  // MAE's encoder for a ViT classifier): each of the model's tensors found there is copied. A
  // data::DataError when one has another shape there, or when none is found.
  struct SharedWeights {
    std::vector<std::string> copied;
    std::vector<std::string> kept;    // the model's own, not in the checkpoint (a new head)
    std::vector<std::string> unused;  // the checkpoint's, not in the model (a decoder)
  };
  SharedWeights load_shared_weights(models::ImageModel& model);
  void load_optimizer(torch::optim::Optimizer& optimizer);
  // The fp16 loss scale, when the checkpoint holds one (earlier ones and bf16/fp32 runs do not).
  void load_loss_scaler(LossScaler& scaler);
  void restore_random_state(torch::Device device);

 private:
  std::filesystem::path file_;
  std::unique_ptr<ChecksummedFile> payload_;
  torch::serialize::InputArchive archive_;
  std::string config_yaml_;
  std::vector<std::string> class_names_;
  std::vector<int64_t> category_ids_;
  TrainingState state_;
  bool has_ema_ = false;
  std::string teacher_fingerprint_;
};

// A run directory or a checkpoint file -> the checkpoint file (RUN_DIR/last.ckpt).
std::filesystem::path resolve_checkpoint(const std::filesystem::path& run_dir_or_file);

}  // namespace vit::app
