#include "app/config/config_names.h"
#include "app/config/config_sections.h"
#include "app/config/field_yaml.h"

#include <limits>

namespace vit::app {
namespace {

using Fields = models::FieldList<TrainConfig>;

// train.betas: one key for AdamW's two betas.
models::Field<TrainConfig> betas_field() {
  models::Field<TrainConfig> field;
  field.key = "betas";
  field.help = "AdamW's [beta1, beta2]";
  field.get = [](const TrainConfig& t) { return models::FieldValue(std::vector<double>{t.beta1, t.beta2}); };
  field.set = [](TrainConfig& t, const models::FieldValue& value) {
    const auto& betas = std::get<std::vector<double>>(value);
    t.beta1 = betas[0];
    t.beta2 = betas[1];
  };
  field.check = [](const models::FieldValue& value) -> std::string {
    const auto& betas = std::get<std::vector<double>>(value);
    if (betas.size() != 2) return "expected two numbers [beta1, beta2]";
    for (const double beta : betas) {
      if (!(beta >= 0.0 && beta < 1.0)) return "both betas must be in [0, 1)";
    }
    return "";
  };
  return field;
}

// train.seed: unsigned, written as a non-negative YAML integer.
models::Field<TrainConfig> seed_field() {
  models::Field<TrainConfig> field;
  field.key = "seed";
  field.help = "seeds initialisation, data order and augmentation";
  field.integer_min = 0;
  field.integer_max = std::numeric_limits<int64_t>::max();
  field.get = [](const TrainConfig& t) { return models::FieldValue(static_cast<int64_t>(t.seed)); };
  field.set = [](TrainConfig& t, const models::FieldValue& value) {
    t.seed = static_cast<uint64_t>(std::get<int64_t>(value));
  };
  return field;
}

std::string device_problem(const models::FieldValue& value) {
  const auto& d = std::get<std::string>(value);
  const bool cuda_index =
      d.rfind("cuda:", 0) == 0 && d.size() > 5 && d.find_first_not_of("0123456789", 5) == std::string::npos;
  if (d == "auto" || d == "cpu" || d == "cuda" || cuda_index) return "";
  return "expected auto, cpu, cuda or cuda:N, got '" + d + "'";
}

}  // namespace

const std::vector<models::Field<TrainConfig>>& train_fields() {
  constexpr int64_t kMaxCount = std::numeric_limits<int32_t>::max();
  constexpr int64_t kMaxSteps = std::numeric_limits<int64_t>::max() / 2;
  static const auto fields =
      Fields()
          .integer("epochs", &TrainConfig::epochs, 1, 100000, "passes over the training data")
          .integer("max_steps", &TrainConfig::max_steps, 0, kMaxSteps,
                   "> 0: stop after this many optimizer steps (and end the schedule there)")
          .integer("batch_size", &TrainConfig::batch_size, 1, 1 << 20, "images per optimizer step (all ranks)")
          .choice("optimizer", &TrainConfig::optimizer, kOptimizerNames, "adamw | sgd")
          .real("lr", &TrainConfig::lr, 1e-12, 100.0, "peak learning rate")
          .real("backbone_lr_scale", &TrainConfig::backbone_lr_scale, 0.0, 100.0,
                "lr of every parameter but the head's, relative to lr (fine-tuning)")
          .real("layer_decay", &TrainConfig::layer_decay, 1e-3, 1.0,
                "< 1: layer-wise lr decay (BEiT/MAE fine-tuning): head at lr, block i at lr x decay^(depth - i), "
                "embeddings lowest")
          .real("min_lr", &TrainConfig::min_lr, 0.0, 100.0, "where cosine and step schedules end")
          .real("weight_decay", &TrainConfig::weight_decay, 0.0, 10.0, "decoupled; not on biases, norms, tokens")
          .custom(betas_field())
          .real("momentum", &TrainConfig::momentum, 0.0, 0.9999, "SGD's momentum")
          .real("warmup_epochs", &TrainConfig::warmup_epochs, 0.0, 100000.0, "linear warmup from 0, in epochs ...")
          .integer("warmup_steps", &TrainConfig::warmup_steps, 0, kMaxSteps, "... or in steps (the larger wins)")
          .choice("schedule", &TrainConfig::schedule, kScheduleNames, "cosine | step | constant")
          .real("decay_epochs", &TrainConfig::decay_epochs, 1e-6, 100000.0, "step schedule: every this many epochs")
          .real("decay_rate", &TrainConfig::decay_rate, 0.0, 1.0, "step schedule: multiply lr by this")
          .real("label_smoothing", &TrainConfig::label_smoothing, 0.0, 0.999, "cross-entropy label smoothing")
          .real(
              "mixup.mixup_alpha", [](TrainConfig& t) -> double& { return t.mixup.mixup_alpha; }, 0.0, 100.0,
              "Mixup's Beta(alpha, alpha); 0 disables Mixup")
          .real(
              "mixup.cutmix_alpha", [](TrainConfig& t) -> double& { return t.mixup.cutmix_alpha; }, 0.0, 100.0,
              "CutMix's Beta(alpha, alpha); 0 disables CutMix")
          .real(
              "mixup.prob", [](TrainConfig& t) -> double& { return t.mixup.probability; }, 0.0, 1.0,
              "chance that a batch is mixed")
          .real(
              "mixup.switch_prob", [](TrainConfig& t) -> double& { return t.mixup.switch_probability; }, 0.0, 1.0,
              "with both on: chance of CutMix instead of Mixup")
          .text(
              "distillation.teacher", [](TrainConfig& t) -> std::string& { return t.distillation.teacher; },
              "TorchScript module (normalized images -> logits) or vitcpp checkpoint")
          .choice(
              "distillation.type", [](TrainConfig& t) -> DistillationKind& { return t.distillation.kind; },
              kDistillationNames, "none | soft (KL at tau, x tau^2) | hard (cross-entropy with the teacher's argmax)")
          .real(
              "distillation.alpha", [](TrainConfig& t) -> double& { return t.distillation.alpha; }, 0.0, 1.0,
              "the teacher's share of the loss (the labels': 1 - alpha)")
          .real(
              "distillation.tau", [](TrainConfig& t) -> double& { return t.distillation.tau; }, 1e-3, 1e3,
              "soft distillation's temperature")
          .real(
              "detection.cost_class", [](TrainConfig& t) -> double& { return t.detection.cost_class; }, 0.0, 1e6,
              "DETR's matching: weight of -p(the object's class)")
          .real(
              "detection.cost_bbox", [](TrainConfig& t) -> double& { return t.detection.cost_bbox; }, 0.0, 1e6,
              "DETR's matching: weight of the boxes' L1 distance")
          .real(
              "detection.cost_giou", [](TrainConfig& t) -> double& { return t.detection.cost_giou; }, 0.0, 1e6,
              "DETR's matching: weight of -GIoU")
          .real(
              "detection.bbox_loss_coef", [](TrainConfig& t) -> double& { return t.detection.bbox_loss_coef; }, 0.0,
              1e6, "DETR's loss: weight of the matched boxes' L1")
          .real(
              "detection.giou_loss_coef", [](TrainConfig& t) -> double& { return t.detection.giou_loss_coef; }, 0.0,
              1e6, "DETR's loss: weight of the matched boxes' 1 - GIoU")
          .real(
              "detection.eos_coef", [](TrainConfig& t) -> double& { return t.detection.eos_coef; }, 0.0, 1.0,
              "DETR's loss: weight of the no-object class in the cross-entropy")
          .flag(
              "detection.aux_loss", [](TrainConfig& t) -> bool& { return t.detection.aux_loss; },
              "supervise every decoder block's predictions, not only the last's")
          .real("grad_clip", &TrainConfig::grad_clip, 0.0, 1e9, "max global gradient norm; 0 disables clipping")
          .integer("grad_accum_steps", &TrainConfig::grad_accum_steps, 1, 65536, "micro-batches per optimizer step")
          .choice("amp", &TrainConfig::amp, kAmpNames, "none | bf16 | fp16 (autocast; fp16 with loss scaling)")
          .real("ema_decay", &TrainConfig::ema_decay, 0.0, 0.999999, "EMA of the weights, evaluated too; 0 disables")
          .integer("eval_every", &TrainConfig::eval_every, 1, kMaxCount, "epochs between validations")
          .integer("save_every", &TrainConfig::save_every, 1, kMaxCount, "epochs between epoch checkpoints")
          .integer("keep_last", &TrainConfig::keep_last, 0, kMaxCount, "epoch checkpoints kept")
          .integer("checkpoint_every_steps", &TrainConfig::checkpoint_every_steps, 0, kMaxCount,
                   "also refresh last.ckpt every N steps; 0 disables")
          .integer("log_every", &TrainConfig::log_every, 1, kMaxCount, "steps between progress lines")
          .flag("tensorboard", &TrainConfig::tensorboard,
                "TensorBoard event files in the run directory (scalars every log_every steps)")
          .custom(seed_field())
          .integer("threads", &TrainConfig::threads, 0, 1024,
                   "intra-op threads; 0: OMP_NUM_THREADS, else cores / local ranks; on the CPU also the slices "
                   "a batch is cut into")
          .integer("batch_slices", &TrainConfig::batch_slices, 0, 1024,
                   "on the CPU, the slices a batch is cut into, each run by threads / slices threads (at most "
                   "threads); 0: one per thread, or where their gradients do not fit in memory the most that do (the "
                   "log says). Fewer slices hold fewer copies of the gradients")
          .text("device", &TrainConfig::device, "auto | cpu | cuda | cuda:N")
          .check(device_problem)
          .choice(
              "distributed.backend", [](TrainConfig& t) -> DistBackend& { return t.distributed.backend; },
              kDistBackendNames, "auto (nccl on CUDA, gloo on the CPU) | gloo | nccl")
          .real(
              "distributed.bucket_mb", [](TrainConfig& t) -> double& { return t.distributed.bucket_mb; }, 0.001, 4096.0,
              "gradients all-reduced in flat buckets of this size")
          .integer(
              "distributed.timeout_s", [](TrainConfig& t) -> int64_t& { return t.distributed.timeout_s; }, 1,
              7 * 24 * 3600, "rendezvous and every collective give up after this")
          .fields();
  return fields;
}

TrainConfig read_train(YamlSection section) {
  TrainConfig t;
  read_fields(section, train_fields(), t);
  if (t.min_lr > t.lr) section.fail("min_lr", "must not exceed train.lr");
  if (t.distillation.enabled() && t.distillation.teacher.empty()) {
    section.section("distillation")
        .fail("teacher",
              "distillation.type " + name_of(kDistillationNames, t.distillation.kind) + " needs a teacher file");
  }
  if (!t.distillation.enabled() && !t.distillation.teacher.empty()) {
    section.section("distillation").fail("type", "is none, so the teacher would not be used; choose soft or hard");
  }
  section.finish();
  return t;
}

}  // namespace vit::app
