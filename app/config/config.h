#pragma once

#include "data/data_options.h"
#include "models/core/model_options.h"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace vit::app {

// The `model` section: an architecture (model.arch, or the one a preset belongs to), a preset
// name, then explicit fields of that architecture that override it.
struct ModelConfig {
  // False when the config has no `model` section at all: commands that build a model to train
  // refuse then rather than silently building the default architecture's (large) defaults.
  bool given = true;
  std::string preset;  // empty: every field from the architecture's defaults and the explicit keys
  models::ModelOptions options = models::default_model_options();
  std::string pretrained;  // a checkpoint (e.g. from `vit import`) whose weights start training
};

enum class OptimizerKind { AdamW, Sgd };
enum class ScheduleKind { Cosine, Step, Constant };
enum class AmpMode { None, Bf16, Fp16 };
enum class DistBackend { Auto, Gloo, Nccl };
enum class DistillationKind { None, Soft, Hard };

// `train.distillation` (DeiT): a teacher's predictions supervise the student's distillation head
// (its class head when it has no distillation token).
struct DistillationConfig {
  std::string teacher;  // a TorchScript module (normalized images -> logits) or a vitcpp checkpoint
  DistillationKind kind = DistillationKind::None;
  double alpha = 0.5;  // the teacher's share of the loss; the labels keep 1 - alpha
  double tau = 1.0;    // soft: temperature of both distributions

  bool enabled() const { return kind != DistillationKind::None; }
};

// `train.detection` (DETR): the Hungarian matching's costs and the loss weights, DETR's defaults.
struct DetectionLossConfig {
  double cost_class = 1.0;  // matching: x (-p(object's class))
  double cost_bbox = 5.0;   // matching: x L1 of the (cx, cy, w, h) boxes
  double cost_giou = 2.0;   // matching: x (-GIoU)
  double bbox_loss_coef = 5.0;
  double giou_loss_coef = 2.0;
  double eos_coef = 0.1;  // the no-object class's weight in the cross-entropy
  bool aux_loss = true;   // every decoder block's predictions are supervised, not just the last's
};

// `train.distributed`: how ranks started by torchrun, SLURM or `vit train --nproc` talk.
struct DistributedConfig {
  DistBackend backend = DistBackend::Auto;  // auto: nccl on CUDA, gloo on the CPU
  double bucket_mb = 25.0;                  // gradients all-reduced in flat buckets of this size
  int64_t timeout_s = 300;                  // rendezvous and every collective give up after this
};

// The `train` section.
struct TrainConfig {
  int64_t epochs = 10;
  int64_t max_steps = 0;  // > 0: stop after this many optimizer steps (and end the schedule there)
  int64_t batch_size = 128;
  OptimizerKind optimizer = OptimizerKind::AdamW;
  double lr = 1e-3;
  double backbone_lr_scale = 1.0;  // lr of every parameter but the head's, relative to lr (fine-tuning)
  double layer_decay = 1.0;        // < 1: layer-wise lr decay, lr x layer_decay^(layers above) (BEiT, MAE)
  double min_lr = 1e-5;
  double weight_decay = 0.05;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double momentum = 0.9;       // SGD
  double warmup_epochs = 0.0;  // linear warmup from 0, in epochs ...
  int64_t warmup_steps = 0;    // ... or in optimizer steps (the larger wins)
  ScheduleKind schedule = ScheduleKind::Cosine;
  double decay_epochs = 30.0;  // step schedule: multiply by decay_rate every decay_epochs
  double decay_rate = 0.1;
  double label_smoothing = 0.0;
  data::MixupOptions mixup;
  DistillationConfig distillation;
  DetectionLossConfig detection;
  double grad_clip = 0.0;  // max global gradient norm; 0 disables
  int64_t grad_accum_steps = 1;
  AmpMode amp = AmpMode::None;
  double ema_decay = 0.0;              // 0 disables the EMA of weights
  int64_t eval_every = 1;              // epochs
  int64_t save_every = 1;              // epochs between epoch checkpoints
  int64_t keep_last = 3;               // epoch checkpoints kept
  int64_t checkpoint_every_steps = 0;  // also refresh last.ckpt every N optimizer steps; 0 disables
  int64_t log_every = 50;              // steps between plain progress lines (non-terminal output)
  bool tensorboard = true;             // event files in the run directory
  uint64_t seed = 0;
  int64_t threads = 0;          // LibTorch intra-op threads; 0: one per core
  int64_t batch_slices = 0;     // on the CPU, slices of threads / slices threads each; 0: one per thread
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
  DistributedConfig distributed;
};

// The whole typed configuration, validated once when loaded; inner code never sees YAML.
struct Config {
  ModelConfig model;
  data::DataOptions data;
  TrainConfig train;
  std::string output = "runs";
};

// A config file (or none: the built-in defaults), then "key.path=value" overrides in order.
// Throws ConfigError naming the file, line and key of the first problem.
Config load_config(const std::optional<std::filesystem::path>& file, const std::vector<std::string>& overrides);
// A configuration held as YAML text (e.g. inside a checkpoint), named `source` in messages.
Config load_config_text(const std::string& text, const std::string& source, const std::vector<std::string>& overrides);
// The complete configuration as YAML; load_config_text(emit_config(c)) gives c back.
std::string emit_config(const Config& config);
// Throws ConfigError when the model has no classification head (model.num_classes 0, a feature
// extractor for export): `what` ("training", "evaluation", ...) needs class logits.
void require_classification_head(const ModelConfig& model, const std::string& what);
// Throws ConfigError when the model can be neither trained on labels (a head) nor pretrained on
// images alone (masked image modelling).
void require_trainable(const ModelConfig& model, const std::string& what);

// A key whose value differs between two configs, with both values as config.yaml spells them
// ("(absent)" for a key only one of them has).
struct ConfigChange {
  std::string key;  // dotted, e.g. "train.batch_size"
  std::string from;
  std::string to;
};
std::vector<ConfigChange> config_changes(const Config& from, const Config& to);
// Every leaf of emit_config(config) by dotted key ("train.mixup.prob"), in document order, with
// its value as config.yaml spells it.
std::vector<std::pair<std::string, std::string>> config_leaves(const Config& config);
// configs/fashion_mnist_vit.yaml as built into the binary, then the overrides.
Config load_default_config(const std::vector<std::string>& overrides);
// The text of the built-in default configuration.
const char* default_config_text();

}  // namespace vit::app
