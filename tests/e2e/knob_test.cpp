// Every documented config key changes what the program does. For each key of the emitted
// config.yaml, a short deterministic run with the key at a non-default value is compared with the
// same run without it, on what the key is for: the per-step losses (steps.csv) for everything
// that shapes training, the validation columns of metrics.csv, the files of the run directory, the
// log, or the exit status. Keys promised NOT to change the results (loader threads) are checked
// to leave the losses bit-identical. The few keys a single-process CPU run cannot show are listed
// with the reason. A key the program emits without an entry here fails the test, and so does an
// entry whose key the program no longer emits.
#include "data/synthetic_shapes.h"
#include "support/run_support.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace vit::testing {
namespace {

namespace fs = std::filesystem;

enum class KnobEffect {
  Steps,       // the per-step losses must differ
  SameSteps,   // the per-step losses must stay bit-identical (the key only changes speed)
  Metrics,     // metrics.csv's validation columns must differ
  Files,       // the names of the files in the run directory must differ
  LogLines,    // the number of log lines must differ
  ThreadLine,  // the log line naming the thread count must differ
  Exit,        // the exit status and its error must differ
  NotHere,     // cannot show in a single-process CPU run: `why` says what covers it
};

struct Knob {
  std::string key;                     // dotted, as in the emitted config.yaml
  std::vector<std::string> overrides;  // key=value first, plus anything the value needs
  KnobEffect observe = KnobEffect::Steps;
  std::vector<std::string> context;  // applied to both runs, so that the key can act
  std::string why;                   // for every observable but Steps
};

// Placeholders in values: {dir} is the test's folder, {base} the baseline run directory.
std::string expand(std::string text, const fs::path& dir, const fs::path& base) {
  text = std::regex_replace(text, std::regex(R"(\{dir\})"), dir.string());
  return std::regex_replace(text, std::regex(R"(\{base\})"), base.string());
}

// The knob runs' images, the same training images as a CSV list with class names, and a copy
// with one damaged file.
void write_knob_data(const fs::path& dir) {
  write_halves_dataset(dir / "train", 32, 1, 3);
  write_halves_dataset(dir / "val", 8, 2, 3);
  std::string csv = "path,label\n";
  for (const std::string name : {"left", "right"}) {
    for (int i = 31; i >= 0; --i)
      csv += (dir / "train" / name / (std::to_string(i) + ".png")).string() + "," + name + "\n";
  }
  write_file(dir / "train.csv", csv);
  fs::copy(dir / "train", dir / "train_damaged", fs::copy_options::recursive);
  write_file(dir / "train_damaged" / "left" / "damaged.png", "not an image");
  // Two small shapes tasks with the same file names (detection keys): another seed, other
  // pictures and boxes.
  data::SyntheticShapesOptions shapes;
  shapes.image_size = 32;
  shapes.train_images = 24;
  shapes.val_images = 8;
  shapes.min_object_size = 6;
  shapes.max_object_size = 14;
  data::write_synthetic_shapes(dir / "shapes", shapes);
  shapes.seed = 1;
  data::write_synthetic_shapes(dir / "shapes_other", shapes);
}

void write_knob_config(const fs::path& dir, bool holdout) {
  const std::string val =
      holdout ? "  val_fraction: 0.25\n" : "  val: {source: imagefolder, path: " + (dir / "val").string() + "}\n";
  write_file(dir / (holdout ? "holdout.yaml" : "knobs.yaml"),
             // depth and the fields left out come from VitOptions, so that model.preset can act.
             "model: {image_size: 16, patch_size: 4, in_chans: 3, num_classes: 2, dim: 16, heads: 2, mlp_ratio: 2.0}\n"
             "data:\n"
             "  train: {source: imagefolder, path: " +
                 (dir / "train").string() + "}\n" + val +
                 "  mean: [0.5, 0.5, 0.5]\n"
                 "  std: [0.25, 0.25, 0.25]\n"
                 "  workers: 2\n"
                 "train: {epochs: 2, batch_size: 8, lr: 3.0e-3, warmup_steps: 2, threads: 1}\n");
}

struct Run {
  int exit_code = 0;
  std::string log;
  fs::path dir;
};

// Flattens a YAML mapping into dotted keys; sequences are leaves.
void flatten(const YAML::Node& node, const std::string& prefix, std::set<std::string>& keys) {
  for (const auto& item : node) {
    const auto key = prefix + item.first.as<std::string>();
    if (item.second.IsMap()) {
      flatten(item.second, key + ".", keys);
    } else {
      keys.insert(key);
    }
  }
}

std::set<std::string> emitted_keys(const fs::path& run_dir) {
  std::set<std::string> keys;
  flatten(YAML::LoadFile((run_dir / "config.yaml").string()), "", keys);
  return keys;
}

std::vector<std::string> metrics_validation_columns(const fs::path& run_dir) {
  std::vector<std::string> cells;
  std::istringstream lines(read_file(run_dir / "metrics.csv"));
  std::string line;
  std::getline(lines, line);
  while (std::getline(lines, line)) {
    std::vector<std::string> row;
    std::istringstream fields(line);
    for (std::string cell; std::getline(fields, cell, ',');) row.push_back(cell);
    row.resize(13);
    // train_loss, val_loss, val_top1, val_top5, ema_val_top1, val_map, val_ap50, ema_val_map
    for (const size_t column : {2, 3, 4, 5, 9, 10, 11, 12}) cells.push_back(row[column]);
  }
  return cells;
}

// Event files are named by the time and process that wrote them: only whether one exists counts.
std::set<std::string> file_names(const fs::path& run_dir) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(run_dir)) {
    const auto name = entry.path().filename().string();
    names.insert(name.find("tfevents") != std::string::npos ? "events.out.tfevents.*" : name);
  }
  return names;
}

std::string thread_line(const Run& run) {
  std::istringstream lines(run.log);
  for (std::string line; std::getline(lines, line);) {
    const auto at = line.find(" threads (");
    if (at != std::string::npos) return line.substr(line.find("device "), line.find(';') - line.find("device "));
  }
  return "";
}

std::string first_error(const Run& run) {
  const auto at = run.log.find("error:");
  return std::to_string(run.exit_code) + " " +
         (at == std::string::npos ? "" : run.log.substr(at, run.log.find('\n', at) - at));
}

class KnobRunner {
 public:
  KnobRunner() {
    write_knob_data(dir_.path());
    write_knob_config(dir_.path(), false);
    write_knob_config(dir_.path(), true);
  }

  const fs::path& dir() const { return dir_.path(); }

  Run train(bool holdout, const std::vector<std::string>& overrides) {
    const auto run_dir = dir_ / ("run" + std::to_string(runs_++));
    std::string command = "train --config " + (dir_ / (holdout ? "holdout.yaml" : "knobs.yaml")).string() +
                          " --output " + run_dir.string();
    for (const auto& assignment : overrides) command += " --set '" + expand(assignment, dir(), baseline()) + "'";
    const auto result = run_vit(command);
    return {result.exit_code, result.err, run_dir};
  }

  // The unchanged run for a context, trained once.
  const Run& base(bool holdout, const std::vector<std::string>& context) {
    std::string id = holdout ? "holdout" : "val";
    for (const auto& assignment : context) id += " " + assignment;
    auto found = bases_.find(id);
    if (found == bases_.end()) found = bases_.emplace(id, train(holdout, context)).first;
    return found->second;
  }

  fs::path baseline() const { return dir_ / "run0"; }

 private:
  TempDir dir_;
  int runs_ = 0;
  std::map<std::string, Run> bases_;
};

bool uses_holdout(const Knob& knob) { return knob.key == "data.val_fraction" || knob.key == "data.split_seed"; }

// Runs each of `knobs` against its unchanged run and checks what it must change.
void check_knobs(const std::vector<Knob>& knobs) {
  KnobRunner runner;
  const auto& baseline = runner.base(false, {});
  ASSERT_EQ(baseline.exit_code, 0) << baseline.log;
  for (const auto& knob : knobs) {
    SCOPED_TRACE(knob.key + " (" + knob.overrides.front() + ")");
    if (knob.observe == KnobEffect::NotHere) {
      EXPECT_FALSE(knob.why.empty());
      continue;
    }
    EXPECT_TRUE(knob.observe == KnobEffect::Steps || !knob.why.empty()) << "say why the losses do not show it";
    const bool holdout = uses_holdout(knob);
    const auto& base = runner.base(holdout, knob.context);
    auto overrides = knob.context;
    overrides.insert(overrides.end(), knob.overrides.begin(), knob.overrides.end());
    const auto changed = runner.train(holdout, overrides);
    if (knob.observe == KnobEffect::Exit) {
      EXPECT_NE(first_error(base), first_error(changed));
      continue;
    }
    ASSERT_EQ(base.exit_code, 0) << base.log;
    ASSERT_EQ(changed.exit_code, 0) << changed.log;
    EXPECT_TRUE(emitted_keys(changed.dir).count(knob.key)) << "the program no longer emits " << knob.key;
    const auto base_steps = loss_column(base.dir / "steps.csv");
    const auto changed_steps = loss_column(changed.dir / "steps.csv");
    switch (knob.observe) {
      case KnobEffect::Steps:
        EXPECT_NE(base_steps, changed_steps) << "setting it left every per-step loss as it was";
        break;
      case KnobEffect::SameSteps:
        EXPECT_EQ(base_steps, changed_steps) << "promised not to change the losses, but did";
        break;
      case KnobEffect::Metrics:
        EXPECT_NE(metrics_validation_columns(base.dir), metrics_validation_columns(changed.dir));
        break;
      case KnobEffect::Files:
        EXPECT_NE(file_names(base.dir), file_names(changed.dir));
        break;
      case KnobEffect::LogLines:
        EXPECT_NE(count_lines(base.log), count_lines(changed.log));
        break;
      case KnobEffect::ThreadLine:
        EXPECT_NE(thread_line(base), thread_line(changed));
        break;
      case KnobEffect::Exit:
      case KnobEffect::NotHere:
        break;
    }
  }
}

Knob steps(const std::string& key, const std::string& value, std::vector<std::string> context = {}) {
  return {key, {key + "=" + value}, KnobEffect::Steps, std::move(context), ""};
}

std::vector<std::string> swin_context() {
  return {"model.arch=swin", "model.depths=[2, 2]", "model.heads=[2, 4]", "model.window_size=2"};
}

// A DETR on the small shapes task (32 px, 4 classes), 4 queries, one decoder block.
std::vector<std::string> detr_context() {
  return {"model.arch=detr",
          "model.image_size=32",
          "model.patch_size=8",
          "model.num_classes=4",
          "model.num_queries=4",
          "model.decoder_depth=1",
          "model.decoder_heads=2",
          "data.train.source=coco",
          "data.train.images={dir}/shapes/train",
          "data.train.annotations={dir}/shapes/train.json",
          "data.val.source=coco",
          "data.val.images={dir}/shapes/val",
          "data.val.annotations={dir}/shapes/val.json"};
}

// The same with anchor queries, whose boxes differ from the first step, so that the box costs of the
// matching decide which query takes which object. The paper's free queries start out with alike
// boxes: there the class cost decides, and a changed box cost only swaps queries whose losses agree
// to the sixth digit (cost_giou: 0 did so in one run of six steps and not in the next).
std::vector<std::string> matched_detr_context() {
  auto context = detr_context();
  context.push_back("model.anchor_queries=true");
  return context;
}

const std::vector<Knob>& model_knobs() {
  static const std::vector<Knob> knobs = {
      {"model.arch",
       {"model.arch=swin", "model.depths=[2]", "model.heads=[2]", "model.window_size=4"},
       KnobEffect::Steps,
       {},
       ""},
      steps("model.preset", "vit_micro_patch4_32"),  // depth 6 instead of VitOptions' 12
      steps("model.image_size", "20"),
      steps("model.patch_size", "8"),
      steps("model.in_chans", "1", {"data.mean=[0.5]", "data.std=[0.25]"}),
      steps("model.num_classes", "3"),
      steps("model.dim", "24"),
      steps("model.depth", "3"),
      steps("model.heads", "4"),
      steps("model.mlp_ratio", "3.0"),
      steps("model.qkv_bias", "false"),
      steps("model.pos_embed", "sincos"),
      steps("model.pool", "mean"),
      steps("model.dropout", "0.1"),
      steps("model.attn_dropout", "0.1"),
      steps("model.drop_path", "0.1"),
      steps("model.layer_scale", "0.1"),
      steps("model.distilled", "true"),
      steps("model.pretrained", "{base}/last.ckpt"),
      // Swin's own keys, on a 4x4 patch map: two stages, windows of 2 (shifted) then one window.
      steps("model.depths", "[1, 2]", swin_context()),
      steps("model.heads", "[1, 4]", swin_context()),
      steps("model.window_size", "4", swin_context()),
      // DETR's own keys.
      steps("model.num_queries", "6", detr_context()),
      steps("model.encoder_depth", "1", detr_context()),
      steps("model.decoder_depth", "2", detr_context()),
      steps("model.decoder_heads", "4", detr_context()),
      steps("model.anchor_queries", "true", detr_context()),
  };
  return knobs;
}

const std::vector<Knob>& data_knobs() {
  // Fashion-MNIST for both splits: the validation classes must be the training classes.
  const std::vector<std::string> idx = {"data.train.source=idx", "data.train.path=/usr/share/datasets/fashion-mnist",
                                        "data.val.source=idx",   "data.val.path=/usr/share/datasets/fashion-mnist",
                                        "model.image_size=28",   "model.in_chans=1",
                                        "data.mean=[0.5]",       "data.std=[0.25]",
                                        "train.max_steps=3",     "model.num_classes=10"};
  static const std::vector<Knob> knobs = {
      {"data.train.source", {"data.train.source=csv", "data.train.path={dir}/train.csv"}, KnobEffect::Steps, {}, ""},
      steps("data.train.path", "{dir}/val"),
      steps("data.train.split", "test", idx),
      {"data.val.source",
       {"data.val.source=csv", "data.val.path={dir}/train.csv"},
       KnobEffect::Metrics,
       {},
       "validation data only"},
      {"data.val.path", {"data.val.path={dir}/train"}, KnobEffect::Metrics, {}, "validation data only"},
      {"data.val.split", {"data.val.split=train"}, KnobEffect::Metrics, idx, "validation data only"},
      steps("data.val_fraction", "0.5"),
      steps("data.split_seed", "7"),
      steps("data.class_names", "[right, left]"),  // which folder is class 0
      {"data.workers", {"data.workers=1"}, KnobEffect::SameSteps, {}, "loader threads: speed only, same data"},
      {"data.prefetch", {"data.prefetch=1"}, KnobEffect::SameSteps, {}, "batches queued ahead: speed only, same data"},
      {"data.on_bad_sample",
       {"data.on_bad_sample=skip"},
       KnobEffect::Exit,
       {"data.train.path={dir}/train_damaged"},
       "acts on damaged files: skipped instead of stopping the run"},
      {"data.max_pixels", {"data.max_pixels=100"}, KnobEffect::Exit, {}, "refuses images larger than this"},
      steps("data.train.images", "{dir}/shapes_other/train", detr_context()),
      steps("data.train.annotations", "{dir}/shapes_other/train.json", detr_context()),
      {"data.val.images",
       {"data.val.images={dir}/shapes_other/val"},
       KnobEffect::Metrics,
       detr_context(),
       "validation data only"},
      {"data.val.annotations",
       {"data.val.annotations={dir}/shapes_other/val.json"},
       KnobEffect::Metrics,
       detr_context(),
       "validation data only"},
      steps("data.mean", "[0.4, 0.4, 0.4]"),
      steps("data.std", "[0.3, 0.3, 0.3]"),
  };
  return knobs;
}

// The same transform keys for both splits: training ones show in the losses, validation ones in
// the validation metrics.
std::vector<Knob> transform_knobs(const std::string& split) {
  const std::string prefix = "data." + split + ".";
  const bool training = split == "train_transforms";
  const auto knob = [&](const std::string& key, const std::string& value, std::vector<std::string> context = {}) {
    for (auto& assignment : context) assignment = prefix + assignment;
    if (training) return steps(prefix + key, value, context);
    return Knob{prefix + key, {prefix + key + "=" + value}, KnobEffect::Metrics, context, "validation images only"};
  };
  return {
      knob("resize", "20"),
      knob("crop_pct", "0.8"),
      knob("center_crop", "true", {"resize=20"}),
      knob("random_resized_crop.scale", "[0.5, 1.0]", {"random_resized_crop={}"}),
      knob("random_resized_crop.ratio", "[0.5, 2.0]", {"random_resized_crop={}"}),
      knob("random_resized_crop.enabled", "true"),  // on with the default scale and ratio
      knob("random_crop_padding", "2"),
      knob("hflip", "0.5"),
      knob("color_jitter.brightness", "0.4"),
      knob("color_jitter.contrast", "0.4"),
      knob("color_jitter.saturation", "0.4"),
      knob("color_jitter.hue", "0.2"),
      knob("rand_augment.num_ops", "2"),
      knob("rand_augment.magnitude", "5", {"rand_augment.num_ops=2"}),
      knob("rand_augment.num_magnitude_bins", "11", {"rand_augment.num_ops=2"}),
      knob("random_erasing.p", "0.5"),
      knob("random_erasing.scale", "[0.1, 0.2]", {"random_erasing.p=1.0"}),
      knob("random_erasing.ratio", "[0.5, 2.0]", {"random_erasing.p=1.0"}),
  };
}

const std::vector<Knob>& train_knobs() {
  static const std::vector<Knob> knobs = {
      steps("train.epochs", "3"),  // the cosine schedule spans more steps
      steps("train.max_steps", "5"),
      steps("train.batch_size", "16"),
      steps("train.optimizer", "sgd"),
      steps("train.lr", "1.0e-3"),
      steps("train.backbone_lr_scale", "0.1"),
      steps("train.layer_decay", "0.5"),
      steps("train.min_lr", "1.0e-3"),
      steps("train.weight_decay", "0.5"),
      steps("train.betas", "[0.8, 0.99]"),
      steps("train.momentum", "0.5", {"train.optimizer=sgd"}),
      steps("train.warmup_epochs", "1"),
      steps("train.warmup_steps", "4"),
      steps("train.schedule", "step"),
      steps("train.decay_epochs", "1", {"train.schedule=step"}),
      steps("train.decay_rate", "0.5", {"train.schedule=step", "train.decay_epochs=1"}),
      steps("train.label_smoothing", "0.1"),
      steps("train.mixup.mixup_alpha", "0.8"),
      steps("train.mixup.cutmix_alpha", "1.0"),
      steps("train.mixup.prob", "0.5", {"train.mixup.mixup_alpha=0.8"}),
      steps("train.mixup.switch_prob", "0.9", {"train.mixup.mixup_alpha=0.8", "train.mixup.cutmix_alpha=1.0"}),
      // The baseline run's checkpoint teaches: a vitcpp checkpoint is a teacher too.
      {"train.distillation.teacher",
       {"train.distillation.teacher={base}/last.ckpt", "train.distillation.type=hard"},
       KnobEffect::Steps,
       {},
       ""},
      steps("train.distillation.type", "soft",
            {"train.distillation.teacher={base}/last.ckpt", "train.distillation.type=hard"}),
      steps("train.distillation.alpha", "0.9",
            {"train.distillation.teacher={base}/last.ckpt", "train.distillation.type=hard"}),
      steps("train.distillation.tau", "4.0",
            {"train.distillation.teacher={base}/last.ckpt", "train.distillation.type=soft"}),
      steps("train.detection.cost_class", "4", detr_context()),
      steps("train.detection.cost_bbox", "1", matched_detr_context()),
      steps("train.detection.cost_giou", "0", matched_detr_context()),
      steps("train.detection.bbox_loss_coef", "2", detr_context()),
      steps("train.detection.giou_loss_coef", "1", detr_context()),
      steps("train.detection.eos_coef", "0.5", detr_context()),
      steps("train.detection.aux_loss", "false",
            [] {
              auto context = detr_context();
              context.push_back("model.decoder_depth=2");
              return context;
            }()),
      steps("train.grad_clip", "0.05"),
      steps("train.grad_accum_steps", "2"),
      steps("train.amp", "bf16"),
      {"train.ema_decay", {"train.ema_decay=0.9"}, KnobEffect::Metrics, {}, "an averaged copy, evaluated on its own"},
      {"train.eval_every", {"train.eval_every=2"}, KnobEffect::Metrics, {}, "when validation runs"},
      {"train.save_every", {"train.save_every=2"}, KnobEffect::Files, {}, "which epoch checkpoints are written"},
      {"train.keep_last", {"train.keep_last=1"}, KnobEffect::Files, {}, "how many epoch checkpoints stay"},
      {"train.checkpoint_every_steps",
       {"train.checkpoint_every_steps=3"},
       KnobEffect::NotHere,
       {},
       "rewrites last.ckpt inside an epoch, which a finished run overwrites; the kill -9 loop of "
       "Faults.KillNineAtRandomMomentsNeverLosesTheRun resumes from those saves"},
      {"train.log_every", {"train.log_every=1"}, KnobEffect::LogLines, {}, "how often a progress line is logged"},
      {"train.tensorboard", {"train.tensorboard=false"}, KnobEffect::Files, {}, "whether event files are written"},
      steps("train.seed", "1"),
      {"train.threads", {"train.threads=2"}, KnobEffect::ThreadLine, {}, "intra-op threads: speed"},
      // Two slices, or the batch whole on both threads: the gradients' sums round differently.
      steps("train.batch_slices", "1", {"train.threads=2"}),
      {"train.device",
       {"train.device=cpu"},
       KnobEffect::NotHere,
       {},
       "auto and cpu are the same device on a machine without a GPU; UsageErrorsExitWithTwo tests cuda"},
      {"train.distributed.backend",
       {"train.distributed.backend=gloo"},
       KnobEffect::NotHere,
       {},
       "data-parallel runs only (DataParallel tests)"},
      {"train.distributed.bucket_mb",
       {"train.distributed.bucket_mb=1"},
       KnobEffect::NotHere,
       {},
       "data-parallel runs only (DataParallel tests)"},
      {"train.distributed.timeout_s",
       {"train.distributed.timeout_s=10"},
       KnobEffect::NotHere,
       {},
       "data-parallel runs only (DataParallel tests)"},
      {"output",
       {"output=elsewhere"},
       KnobEffect::NotHere,
       {},
       "the parent of runs/<timestamp> when --output is not given"},
  };
  return knobs;
}

std::set<std::string> table_keys() {
  std::set<std::string> keys;
  auto all = model_knobs();
  for (const auto* part : {&data_knobs(), &train_knobs()}) all.insert(all.end(), part->begin(), part->end());
  for (const auto* split : {"train_transforms", "val_transforms"}) {
    const auto knobs = transform_knobs(split);
    all.insert(all.end(), knobs.begin(), knobs.end());
  }
  for (const auto& knob : all) keys.insert(knob.key);
  return keys;
}

TEST(Knobs, EveryEmittedKeyHasAnEntry) {
  KnobRunner runner;
  const auto& baseline = runner.base(false, {});
  ASSERT_EQ(baseline.exit_code, 0) << baseline.log;
  const auto known = table_keys();
  for (const auto& key : emitted_keys(baseline.dir)) {
    EXPECT_TRUE(known.count(key)) << key << " is emitted into config.yaml but has no entry in the knob table";
  }
}

TEST(Knobs, ModelKeysChangeTraining) { check_knobs(model_knobs()); }
TEST(Knobs, DataKeysChangeTraining) { check_knobs(data_knobs()); }
TEST(Knobs, TrainTransformKeysChangeTraining) { check_knobs(transform_knobs("train_transforms")); }
TEST(Knobs, ValTransformKeysChangeValidation) { check_knobs(transform_knobs("val_transforms")); }
TEST(Knobs, TrainKeysChangeTraining) { check_knobs(train_knobs()); }

}  // namespace
}  // namespace vit::testing
