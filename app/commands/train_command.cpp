// The whole training loop lives in run_train(), top to bottom; the pieces it calls (data
// loaders, optimizer and schedule, EMA, checkpoints, metrics) each have a file of their own.
#include "app/commands/train_command.h"

#include "app/commands/common_options.h"
#include "app/config/config_names.h"
#include "app/config/model_json.h"
#include "app/distributed/distributed.h"
#include "app/distributed/launcher.h"
#include "app/errors.h"
#include "app/io/checkpoint.h"
#include "app/io/file_util.h"
#include "app/io/run_directory.h"
#include "app/runtime/blas_kernels.h"
#include "app/runtime/runtime.h"
#include "app/runtime/signals.h"
#include "app/train/device_input.h"
#include "app/train/ema.h"
#include "app/train/evaluation.h"
#include "app/train/loaders.h"
#include "app/train/metrics_log.h"
#include "app/train/optimization.h"
#include "app/train/progress.h"
#include "app/train/teacher.h"
#include "app/train/tensorboard_log.h"
#include "app/train/training_memory.h"
#include "app/train/training_step.h"
#include "app/viz/plot.h"
#include "app/viz/reconstruction_grid.h"
#include "data/errors.h"
#include "data/mask_noise.h"
#include "data/subset.h"
#include "models/core/registry.h"
#include "models/inspect/complexity.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <tuple>

namespace vit::app {
namespace {

namespace fs = std::filesystem;

struct TrainOptions {
  CommonOptions common;
  std::string output;      // the run directory; default <config output>/<timestamp>
  std::string resume;      // a run directory or checkpoint to continue, or "auto"
  bool overwrite = false;  // start afresh in an --output that already holds a run
  bool force = false;      // train even when the memory estimate exceeds what is available
  int64_t stop_after = 0;
  int64_t nproc = 1;  // > 1: launch this many local ranks of a data-parallel job
};

enum class Stop { None, Signal, StopAfter, MaxSteps };

std::string timestamp() {
  const std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof(text), "%Y%m%d-%H%M%S", std::localtime(&now));
  return text;
}

// A run directory of its own under `parent`, named by the time: two runs started in the same
// second (parallel jobs, a script) get "-2", "-3"... rather than one refusing the other's folder.
fs::path new_run_directory(const fs::path& parent) {
  fs::create_directories(parent);
  const auto name = timestamp();
  for (int attempt = 1;; ++attempt) {
    auto candidate = parent / (attempt == 1 ? name : name + "-" + std::to_string(attempt));
    if (fs::create_directory(candidate)) return candidate;
  }
}

void prune_epoch_checkpoints(const fs::path& run_dir, int64_t epoch, int64_t save_every, int64_t keep_last) {
  const int64_t oldest_kept = epoch - (keep_last - 1) * save_every;
  for (int64_t old = epoch - keep_last * save_every; old > 0 && old < oldest_kept; old -= save_every) {
    std::error_code ignored;
    fs::remove(run_dir / fmt::format("epoch_{:04}.ckpt", old), ignored);
  }
}

// What --set may change when a run continues: the schedule (the learning rate at each step), how
// often it logs, evaluates and saves, where the data lives and how it is loaded, and the machine.
// Anything else would make the continued run another run (or no longer fit the saved optimizer).
void check_resume_changes(const Config& recorded, const Config& requested) {
  static const std::set<std::string> kAllowed = {"train.epochs",
                                                 "train.max_steps",
                                                 "train.lr",
                                                 "train.min_lr",
                                                 "train.warmup_epochs",
                                                 "train.warmup_steps",
                                                 "train.schedule",
                                                 "train.decay_epochs",
                                                 "train.decay_rate",
                                                 "train.eval_every",
                                                 "train.save_every",
                                                 "train.keep_last",
                                                 "train.checkpoint_every_steps",
                                                 "train.log_every",
                                                 "train.tensorboard",
                                                 "train.threads",
                                                 "train.device",
                                                 "train.distributed.backend",
                                                 "train.distributed.bucket_mb",
                                                 "train.distributed.timeout_s",
                                                 "data.train.path",
                                                 "data.val.path",
                                                 "data.train.images",
                                                 "data.train.annotations",
                                                 "data.val.images",
                                                 "data.val.annotations",
                                                 "data.workers",
                                                 "data.prefetch",
                                                 "data.on_bad_sample",
                                                 "model.pretrained",
                                                 "output"};
  for (const auto& change : config_changes(recorded, requested)) {
    if (kAllowed.count(change.key) != 0) continue;
    throw ConfigError(fmt::format(
        "--resume: {} was {} in the run being continued (asked: {}); a resumed run may change only its schedule "
        "(train.epochs, max_steps, lr, min_lr, warmup, schedule, decay), logging, evaluation and checkpoint "
        "cadence, threads, device, data paths and loader settings. For other settings start a new run from its "
        "weights with --set model.pretrained=CHECKPOINT",
        change.key, change.from, change.to));
  }
}

std::vector<std::string> file_names(const std::vector<fs::path>& files) {
  std::vector<std::string> names;
  for (const auto& file : files) names.push_back(file.filename().string());
  return names;
}

// Ranks other than 0 only compute: they log warnings and errors, tagged with their rank.
void quiet_logging_for(int64_t rank) {
  spdlog::set_level(spdlog::level::warn);
  spdlog::default_logger()->set_pattern(fmt::format("[%H:%M:%S] rank {} %^%l%$ %v", rank));
}

// model.pretrained: the weights of a checkpoint of the same architecture, or the tensors that a
// model of another one shares with this model by name (an MAE's encoder for a ViT classifier).
void load_pretrained(models::ImageModel& model, const Config& config) {
  const auto& file = config.model.pretrained;
  CheckpointReader reader(file);
  const auto pretrained = load_config_text(reader.config_yaml(), file + " (embedded config)", {});
  const auto& arch = pretrained.model.options.arch();
  if (arch == config.model.options.arch()) {
    reader.load_model(model, false);
    spdlog::info("starting from the weights of {} (model.pretrained)", file);
    return;
  }
  const auto shared = reader.load_shared_weights(model);
  spdlog::info(
      "starting from the {} tensors that {} (a {} model) shares with this {} (model.pretrained); {} keep "
      "their initialisation ({}); {} of its tensors are not used{}",
      shared.copied.size(), file, arch, config.model.options.arch(), shared.kept.size(), fmt::join(shared.kept, ", "),
      shared.unused.size(), shared.unused.empty() ? "" : " (" + shared.unused.front() + ", ...)");
}

// The first images of the validation set (else of the training set) through the evaluation
// transform, on the device: what reconstruction.png shows after every epoch, each hiding the
// patches it hides in evaluation (its dataset index is its place in the batch).
torch::Tensor preview_images(const Config& config, const data::DataSplits& splits, torch::Device device) {
  constexpr size_t kPreviewImages = 8;
  const auto& source = splits.val ? splits.val : splits.train;
  std::vector<size_t> indices(std::min(kPreviewImages, source->size()));
  std::iota(indices.begin(), indices.end(), size_t{0});
  LoaderRequest request;
  request.batch_size = static_cast<int64_t>(indices.size());
  request.workers = 1;
  auto loader = make_loader(config, std::make_shared<data::SubsetDataset>(source, indices), request);
  loader->start_epoch(0);
  const auto batch = loader->next();
  return DeviceInput(loader->transform().mean(), loader->transform().std(), device)(batch->images);
}

// COCO-style average precision of a detector on the validation split, over all ranks.
AveragePrecision detection_precision(models::ImageModel& model, data::DataLoader& loader, int64_t num_classes,
                                     torch::Device device, AmpMode amp, const BatchShards& shards,
                                     DataParallel& parallel) {
  const auto found = combine_ranks(collect_detections(model, loader, device, amp == AmpMode::Bf16, shards), parallel);
  return mean_average_precision(found.detections, found.objects, num_classes);
}

int run_train(const TrainOptions& options) {
  const auto ranks = read_rank_environment();
  if (options.nproc > 1 && std::getenv("WORLD_SIZE") == nullptr) return launch_local_ranks(options.nproc);
  if (options.nproc > 1 && options.nproc != ranks.world_size) {
    throw ConfigError(fmt::format("--nproc {}: this process is already rank {} of a job of {} (WORLD_SIZE)",
                                  options.nproc, ranks.rank, ranks.world_size));
  }
  const bool main_rank = ranks.rank == 0;
  if (!main_rank) quiet_logging_for(ranks.rank);
  StopSignals signals(StopSignals::Second::StopsAtOnce, /*announce=*/main_rank);
  if (options.overwrite && !options.resume.empty()) {
    throw ConfigError("--overwrite starts a run afresh; it cannot be combined with --resume");
  }
  const bool auto_resume = options.resume == "auto";
  if (auto_resume && options.output.empty()) {
    throw ConfigError("--resume auto: give the run directory with --output DIR (continued if DIR/last.ckpt exists)");
  }
  fs::path resume_file;
  if (auto_resume) {
    if (fs::exists(fs::path(options.output) / "last.ckpt")) resume_file = fs::path(options.output) / "last.ckpt";
  } else if (!options.resume.empty()) {
    resume_file = resolve_checkpoint(options.resume);
    std::error_code error;
    if (!options.output.empty() && !fs::equivalent(resume_file.parent_path(), options.output, error)) {
      throw ConfigError(fmt::format("--resume {} continues in {}; drop --output {}", options.resume,
                                    resume_file.parent_path().string(), options.output));
    }
  }

  Config config;
  fs::path run_dir;
  std::unique_ptr<CheckpointReader> resume;  // (InputArchive's copy constructor keeps it out of std::optional)
  if (!resume_file.empty()) {
    resume = std::make_unique<CheckpointReader>(resume_file);
    const auto source = resume_file.string() + " (embedded config)";
    // --resume auto runs the same command line each time: its config file (if any) says what the
    // run is, and must agree with the checkpoint's up to what a resume may change.
    config = auto_resume && options.common.config_file
                 ? load_common_config(options.common, WithoutConfigFile::kUseDefaultConfig)
                 : load_config_text(resume->config_yaml(), source, common_overrides(options.common));
    check_resume_changes(load_config_text(resume->config_yaml(), source, {}), config);
    run_dir = resume_file.parent_path();
  } else {
    config = load_common_config(options.common, WithoutConfigFile::kUseDefaultConfig);
    if (!config.model.given) {
      throw ConfigError(fmt::format(
          "{}: no model section; choose a model with model.preset (one of: {}) or give model.arch and its fields",
          options.common.config_file.value_or("the config"), fmt::join(models::all_preset_names(), ", ")));
    }
    run_dir = options.output.empty() ? fs::path(config.output) / timestamp() : fs::path(options.output);
  }
  require_trainable(config.model, "training");
  const TrainConfig& train = config.train;
  if (train.batch_size % ranks.world_size != 0) {
    throw ConfigError(fmt::format("train.batch_size: {} (the global batch) does not split evenly over {} ranks",
                                  train.batch_size, ranks.world_size));
  }
  const int64_t rank_batch_size = train.batch_size / ranks.world_size;
  // Only rank 0 writes the run directory, holding its lock while it does.
  std::optional<RunLock> lock;
  if (main_rank) {
    if (!resume && options.output.empty()) {
      run_dir = new_run_directory(config.output);
    } else {
      fs::create_directories(run_dir);
    }
    lock.emplace(run_dir);
    if (!resume && !run_files(run_dir).empty()) {
      if (!options.overwrite && !auto_resume) {
        throw ConfigError(fmt::format(
            "--output {}: already holds a run ({}); continue it with `vit train --resume {}`, or start over with "
            "--overwrite (removes its checkpoints, metrics and plots)",
            run_dir.string(), fmt::join(file_names(run_files(run_dir)), ", "), run_dir.string()));
      }
      spdlog::info("removing the earlier run's files from {}", run_dir.string());
      remove_run_files(run_dir);
    }
    remove_stale_temporaries(run_dir);
    write_text_atomically(run_dir / "config.yaml", emit_config(config));
  }

  const auto threads = configure_threads(train.threads);
  const auto device = select_device(train.device, ranks.world_size > 1 ? ranks.local_rank : 0);
  if (train.amp == AmpMode::Fp16 && !device.is_cuda()) {
    throw ConfigError("train.amp: fp16 needs a CUDA device; use bf16 on the CPU");
  }
  DataParallel parallel(ranks, train.distributed, device);
  // Each rank draws its own dropout and drop-path masks; rank 0 matches a single-process run.
  torch::manual_seed(train.seed + static_cast<uint64_t>(ranks.rank));

  // Data: the loaders run ahead of the model on their own threads.
  const auto splits = open_checked_datasets(config);
  torch::Tensor preview;
  if (models::objective_of(config.model.options) == models::Objective::MaskedImageModeling && main_rank) {
    preview = preview_images(config, splits, device);
  }
  const auto class_names = splits.train->class_names();
  LoaderRequest request;
  request.batch_size = rank_batch_size;
  request.seed = train.seed;
  request.rank = ranks.rank;
  request.world_size = ranks.world_size;
  request.device = device;
  request.training = true;
  auto train_loader = make_loader(config, splits.train, request);
  request.training = false;
  auto val_loader = splits.val ? make_loader(config, splits.val, request) : nullptr;
  const DeviceInput to_input(train_loader->transform().mean(), train_loader->transform().std(), device);
  const int64_t batches_per_epoch = train_loader->batches_per_epoch();
  const int64_t steps_per_epoch = batches_per_epoch / train.grad_accum_steps;
  if (steps_per_epoch == 0) {
    throw ConfigError(
        fmt::format("train.batch_size: {} training images make no full batch of {} x {} accumulation steps",
                    splits.train->size(), train.batch_size, train.grad_accum_steps));
  }

  // Model, optimizer, schedule, EMA, and where a resumed run left off.
  auto model = models::build_model(config.model.options);
  const auto complexity = models::measure_complexity(*model);
  spdlog::info("model {}: {} parameters, {:.3f} GFLOPs per image", describe_model(config.model), complexity.parameters,
               complexity.gflops());
  const double loader_bytes =
      static_cast<double>(train_loader->batch_buffer_bytes() + (val_loader ? val_loader->batch_buffer_bytes() : 0));
  const auto shards = batch_shards_within_memory(complexity, train, rank_batch_size, loader_bytes, device,
                                                 threads.count, options.force);
  if (!config.model.pretrained.empty() && !resume) load_pretrained(model, config);
  auto* masked_model = models::masked_image_model(model);
  const bool detector = models::detection_model(model) != nullptr;
  const int64_t num_classes = models::shape_of(config.model.options).num_classes;
  model->to(device);
  parallel.broadcast_from_main(*model);
  parallel.attach_gradient_buckets(model->parameters());
  auto optimizer = make_optimizer(model, train, shards);
  std::optional<ModelEma> ema;
  if (train.ema_decay > 0.0) ema.emplace(model, models::build_model(config.model.options), train.ema_decay);
  // The teacher answers a probe batch before training starts, so that a teacher that does not fit
  // fails here, and a resumed run must have the teacher it began with.
  std::optional<Teacher> teacher;
  if (train.distillation.enabled()) {
    teacher.emplace(config, device);
    spdlog::info("distillation ({}, alpha {}, tau {}) from the teacher {}",
                 name_of(kDistillationNames, train.distillation.kind), train.distillation.alpha, train.distillation.tau,
                 teacher->description());
    if (resume && resume->teacher_fingerprint() != teacher->fingerprint()) {
      throw ConfigError(fmt::format(
          "--resume: the teacher {} is not the file the run began with ({} then, {} now); resume with that teacher",
          train.distillation.teacher,
          resume->teacher_fingerprint().empty() ? "none recorded" : resume->teacher_fingerprint(),
          teacher->fingerprint()));
    }
  }
  TrainingState state;
  if (resume) {
    resume->load_model(model, false);
    resume->load_optimizer(*optimizer);
    if (ema) resume->load_model(ema->model(), resume->has_ema());
    state = resume->state();
    resume->restore_random_state(device);
    spdlog::info("resuming {} at epoch {}, batch {}, step {}", resume->file().string(), state.epoch + 1,
                 state.batch_in_epoch, state.step);
  }
  const LrSchedule schedule(train, steps_per_epoch);
  std::optional<MetricsLog> metrics;
  std::optional<StepLog> step_log;
  std::optional<TensorBoardLog> tensorboard;
  if (main_rank) {
    metrics.emplace(run_dir, state.epoch);
    step_log.emplace(run_dir, state.step);
    if (train.tensorboard) tensorboard.emplace(run_dir, resume ? &state : nullptr);
  }
  TrainingStep training_step(model, *optimizer, ema ? &*ema : nullptr, parallel, train, device,
                             teacher ? &*teacher : nullptr, shards);
  if (resume) resume->load_loss_scaler(training_step.scaler());

  spdlog::info("data: {} training images, {} validation images, {} classes; {} steps per epoch", splits.train->size(),
               splits.val ? splits.val->size() : 0, class_names.size(), steps_per_epoch);
  spdlog::info("device {}, {} threads ({}), amp {}; run directory {}", device.str(), threads.count, threads.source,
               name_of(kAmpNames, train.amp), run_dir.string());
  if (train.amp == AmpMode::Bf16 && device.is_cpu()) {
    const auto products = chosen_bf16_products();
    spdlog::info("bf16 products: {}{}", describe(products),
                 products.products == models::Bf16Products::kFp32Blas
                     ? "; on these kernels bf16 trains no faster than fp32 (train.amp: none)"
                     : "");
  }
  if (shards.count() > 1) {
    spdlog::info("each micro-batch runs as {} slices, {} thread{} each (train.threads, train.batch_slices)",
                 shards.count(), shards.threads_per_slice(), shards.threads_per_slice() == 1 ? "" : "s");
  }
  if (ranks.world_size > 1) {
    spdlog::info("data-parallel: {} ranks ({}), {} images per rank and step", ranks.world_size, parallel.backend(),
                 rank_batch_size);
  }

  const auto save = [&](const fs::path& file, const TrainingState& at) {
    if (!main_rank) return;
    CheckpointContents contents;
    contents.model = &model;
    contents.optimizer = optimizer.get();
    contents.ema = ema ? &*ema : nullptr;
    contents.loss_scaler = &training_step.scaler();
    contents.config_yaml = emit_config(config);
    contents.class_names = class_names;
    contents.category_ids = splits.train->category_ids();
    contents.state = at;
    contents.device = device;
    if (teacher) contents.teacher_fingerprint = teacher->fingerprint();
    save_checkpoint(file, contents);
  };

  // Fault injection for tests of the non-finite-loss path: the loss of this step becomes NaN.
  const char* inject_nan = std::getenv("VIT_INJECT_NAN_AT_STEP");
  const int64_t nan_step = inject_nan != nullptr ? std::atoll(inject_nan) : -1;

  Stop stop = Stop::None;
  int64_t steps_this_run = 0;
  for (; state.epoch < train.epochs && stop == Stop::None; ++state.epoch, state.batch_in_epoch = 0) {
    model->train();
    // Micro-batches left over at the end of the previous epoch (batches_per_epoch not a multiple
    // of grad_accum_steps) never reached an optimizer step; their gradients must not leak.
    training_step.discard();
    train_loader->start_epoch(state.epoch, state.batch_in_epoch);
    Progress progress(fmt::format("epoch {}/{}", state.epoch + 1, train.epochs), batches_per_epoch,
                      state.batch_in_epoch, main_rank ? train.log_every : 0);
    const auto epoch_start = std::chrono::steady_clock::now();
    // A run resumed inside this epoch counts the epoch's earlier steps too.
    double loss_sum = 0.0;
    int64_t losses = 0;
    if (step_log && state.batch_in_epoch > 0) std::tie(loss_sum, losses) = step_log->losses_of_epoch(state.epoch + 1);
    int64_t images = 0;
    double lr = schedule.at(state.step);

    // Step losses stay on the device until read back in one transfer every log_every steps,
    // before a save and at the end of the epoch, so a step never waits for the device. A
    // non-finite one stops training there, before any checkpoint could hold its weights.
    struct PendingStep {
      int64_t step;
      double lr;
      double images_per_s;  // of the epoch so far
    };
    std::vector<torch::Tensor> pending_losses;
    std::vector<PendingStep> pending_steps;
    const auto read_back_losses = [&] {
      if (pending_losses.empty()) return;
      const auto values = torch::stack(pending_losses).to(torch::kCPU, torch::kFloat64);
      for (size_t i = 0; i < pending_steps.size(); ++i) {
        const auto [step, step_lr, images_per_s] = pending_steps[i];
        const double value = values[static_cast<int64_t>(i)].item<double>();
        if (!std::isfinite(value)) {
          throw std::runtime_error(
              fmt::format("loss is {} at epoch {}, step {}: training stopped; the last good checkpoint is {}",
                          std::isnan(value) ? "nan" : fmt::format("{}", value), state.epoch + 1, step,
                          (run_dir / "last.ckpt").string()));
        }
        loss_sum += value;
        ++losses;
        if (step_log) step_log->append(step, state.epoch + 1, value, step_lr);
        if (tensorboard && step % train.log_every == 0) tensorboard->log_step(step, value, step_lr, images_per_s);
      }
      pending_losses.clear();
      pending_steps.clear();
    };

    while (auto batch = train_loader->next()) {
      const bool completes_step = (batch->step + 1) % train.grad_accum_steps == 0;
      auto inputs = to_input(batch->images);
      if (state.step + 1 == nan_step) inputs = inputs * std::numeric_limits<double>::quiet_NaN();
      TrainingStep::MicroBatch micro_batch{
          inputs, batch->labels.to(device, /*non_blocking=*/true), batch->targets, {}, {}};
      if (batch->boxes.defined()) {
        const auto* counts = batch->box_counts.data_ptr<int64_t>();
        micro_batch.objects = {batch->boxes.to(device, /*non_blocking=*/true),
                               batch->box_labels.to(device, /*non_blocking=*/true),
                               std::vector<int64_t>(counts, counts + batch->box_counts.numel())};
      }
      if (masked_model != nullptr) {
        micro_batch.mask_noise =
            data::mask_noise(batch->indices, train.seed, state.epoch, masked_model->mask_noise_size()).to(device);
      }
      training_step.accumulate(micro_batch, completes_step);
      images += batch->images.size(0) * ranks.world_size;
      state.batch_in_epoch = batch->step + 1;
      if (!completes_step) continue;

      // Every rank now holds the rank-averaged gradients and agrees on the loss and on stopping.
      lr = schedule.at(state.step);
      const auto summary = training_step.apply(lr, signals.received() != 0);
      ++state.step;
      ++steps_this_run;
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
      const double images_per_s = static_cast<double>(images) / seconds;
      pending_losses.push_back(summary.mean_loss);
      pending_steps.push_back({state.step, lr, images_per_s});
      if (state.step % train.log_every == 0) read_back_losses();
      progress.update(state.batch_in_epoch, losses > 0 ? loss_sum / static_cast<double>(losses) : 0.0, lr,
                      images_per_s);

      if (train.checkpoint_every_steps > 0 && state.step % train.checkpoint_every_steps == 0) {
        read_back_losses();
        save(run_dir / "last.ckpt", state);
      }
      if (summary.stop_requested) {
        stop = Stop::Signal;
      } else if (options.stop_after > 0 && steps_this_run >= options.stop_after) {
        stop = Stop::StopAfter;
      } else if (train.max_steps > 0 && state.step >= train.max_steps) {
        stop = Stop::MaxSteps;
      }
      if (stop != Stop::None) break;
    }
    read_back_losses();
    progress.finish();
    if (train_loader->skipped_samples() > 0) {
      spdlog::warn("epoch {}: skipped {} bad samples", state.epoch + 1, train_loader->skipped_samples());
    }
    if (stop == Stop::Signal || stop == Stop::StopAfter) break;

    // End of an epoch (or of training at max_steps): evaluate, log, checkpoint.
    const bool finished_epoch = stop == Stop::None;
    const TrainingState next = finished_epoch ? TrainingState{state.epoch + 1, 0, state.step, state.best_top1} : state;
    EpochMetrics row;
    row.epoch = state.epoch + 1;
    row.step = state.step;
    row.train_loss = losses > 0 ? loss_sum / static_cast<double>(losses) : 0.0;
    row.lr = lr;
    row.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
    row.images_per_s = static_cast<double>(images) / row.seconds;
    const bool last_epoch = !finished_epoch || state.epoch + 1 == train.epochs;
    TrainingState saved = next;
    std::optional<EvalResult> validation;
    const bool evaluates = (state.epoch + 1) % train.eval_every == 0 || last_epoch;
    if (val_loader && evaluates && masked_model != nullptr) {
      row.val_loss = combine_ranks(evaluate_reconstruction(model, *val_loader, train.seed, device,
                                                           train.amp == AmpMode::Bf16, shards),
                                   parallel)
                         .loss;
      spdlog::info("epoch {}: train loss {:.4f}, val reconstruction loss {:.4f} ({:.0f} img/s, {:.1f} s)", row.epoch,
                   row.train_loss, *row.val_loss, row.images_per_s, row.seconds);
    } else if (val_loader && evaluates && detector) {
      const auto precision = detection_precision(model, *val_loader, num_classes, device, train.amp, shards, parallel);
      row.val_map = precision.map;
      row.val_ap50 = precision.ap50;
      std::string ema_text;
      if (ema) {
        row.ema_val_map =
            detection_precision(ema->model(), *val_loader, num_classes, device, train.amp, shards, parallel).map;
        ema_text = fmt::format(", EMA mAP {:.3f}", *row.ema_val_map);
      }
      spdlog::info("epoch {}: train loss {:.4f}, val mAP {:.3f}, AP50 {:.3f}, AP75 {:.3f}{} ({:.0f} img/s, {:.1f} s)",
                   row.epoch, row.train_loss, precision.map, precision.ap50, precision.ap75, ema_text, row.images_per_s,
                   row.seconds);
      // best.ckpt: the best validation mAP (best_top1 holds a detector's mAP).
      if (precision.map > state.best_top1) {
        state.best_top1 = saved.best_top1 = precision.map;
        save(run_dir / "best.ckpt", saved);
      }
    } else if (val_loader && evaluates) {
      validation = combine_ranks(evaluate(model, *val_loader, num_classes, device, train.amp == AmpMode::Bf16, shards),
                                 parallel);
      const auto& result = *validation;
      row.val_loss = result.loss;
      row.val_top1 = result.top1;
      row.val_top5 = result.top5;
      std::string ema_text;
      if (ema) {
        const auto ema_result = combine_ranks(
            evaluate(ema->model(), *val_loader, num_classes, device, train.amp == AmpMode::Bf16, shards), parallel);
        row.ema_val_top1 = ema_result.top1;
        ema_text = fmt::format(", EMA top-1 {:.2f}%", 100.0 * ema_result.top1);
      }
      spdlog::info(
          "epoch {}: train loss {:.4f}, val loss {:.4f}, top-1 {:.2f}%, top-5 {:.2f}%{} ({:.0f} img/s, {:.1f} s)",
          row.epoch, row.train_loss, result.loss, 100.0 * result.top1, 100.0 * result.top5, ema_text, row.images_per_s,
          row.seconds);
      if (result.top1 > state.best_top1) {
        state.best_top1 = saved.best_top1 = result.top1;
        save(run_dir / "best.ckpt", saved);
      }
    } else {
      spdlog::info("epoch {}: train loss {:.4f} ({:.0f} img/s, {:.1f} s)", row.epoch, row.train_loss, row.images_per_s,
                   row.seconds);
    }
    if (masked_model != nullptr && main_rank && evaluates) {
      const auto& transform = train_loader->transform();
      write_png(run_dir / "reconstruction.png",
                reconstruction_picture(model, preview, train.seed, transform.mean(), transform.std()));
    }
    if (metrics) metrics->append(row);
    if (tensorboard) tensorboard->log_epoch(row, validation ? &*validation : nullptr, class_names);
    save(run_dir / "last.ckpt", saved);
    if (finished_epoch && train.keep_last > 0 && (state.epoch + 1) % train.save_every == 0) {
      save(run_dir / fmt::format("epoch_{:04}.ckpt", state.epoch + 1), saved);
      prune_epoch_checkpoints(run_dir, state.epoch + 1, train.save_every, train.keep_last);
    }
  }

  if (stop == Stop::Signal || stop == Stop::StopAfter) {
    save(run_dir / "last.ckpt", state);
    // A rank that saw no signal itself stops because another did.
    const int signal = signals.received() != 0 ? signals.received() : SIGINT;
    const char* how = stop == Stop::StopAfter ? "stopped"
                      : signal == SIGTERM     ? "terminated"
                      : signal == SIGHUP      ? "hung up"
                                              : "interrupted";
    spdlog::warn("{} after step {}: saved {}; continue with: vit train --resume {}", how, state.step,
                 (run_dir / "last.ckpt").string(), run_dir.string());
    return stop == Stop::Signal ? 128 + signal : kExitSuccess;
  }
  const auto result = masked_model != nullptr ? std::string("pretrained")
                      : detector              ? fmt::format("best val mAP {:.3f}", std::max(0.0, state.best_top1))
                                 : fmt::format("best val top-1 {:.2f}%", 100.0 * std::max(0.0, state.best_top1));
  spdlog::info("done: {} steps; {}; peak memory {:.0f} MiB; run directory {}", state.step, result, peak_rss_mb(),
               run_dir.string());
  return kExitSuccess;
}

}  // namespace

void add_train_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<TrainOptions>();
  auto* command = app.add_subcommand("train", "Train a model (default: configs/fashion_mnist_vit.yaml)");
  add_common_options(*command, options->common);
  command->add_option("-o,--output", options->output, "Run directory (default: <output>/<timestamp>)");
  command->add_option("--resume", options->resume,
                      "Continue a run: its directory or a checkpoint file; `auto`: --output's last.ckpt if it exists, "
                      "else start there afresh (preemptible jobs, torchrun restarts)");
  command->add_flag("--overwrite", options->overwrite,
                    "Start afresh in an --output that holds a run, removing its checkpoints, metrics and plots");
  command->add_flag("--force", options->force,
                    "Train even when the memory estimate exceeds the memory available (with train.batch_slices 0, "
                    "a slice per thread)");
  command
      ->add_option("--stop-after", options->stop_after,
                   "Stop after N optimizer steps of this invocation, saving last.ckpt (a time-boxed run)")
      ->check(CLI::Range(int64_t{1}, std::numeric_limits<int64_t>::max()));
  command
      ->add_option("--nproc", options->nproc,
                   "Launch N local ranks of a data-parallel job (c10d Gloo/NCCL; train.batch_size is the global batch)")
      ->check(CLI::Range(int64_t{1}, int64_t{1024}));
  command->footer(
      "Examples:\n"
      "  vit train                                   # Fashion-MNIST with the default config\n"
      "  vit train --config configs/cifar10_vit.yaml --set train.epochs=50 --output runs/cifar\n"
      "  vit train --resume runs/cifar               # continue from runs/cifar/last.ckpt\n"
      "  vit train --output runs/job --resume auto   # continue runs/job if it has a checkpoint, else start it\n"
      "  vit train --set train.amp=bf16 --threads 2 --seed 1\n"
      "  vit train --nproc 2 --threads 1                    # data-parallel, 2 local ranks (Gloo)\n"
      "  torchrun --nnodes 2 --nproc_per_node 1 --node_rank 0 --master_addr HOST --master_port 29500 \\\n"
      "      --no_python vit train ...               # node 0 of 2; node 1 runs it with --node_rank 1");
  command->callback([options, &exit_code] { exit_code = run_train(*options); });
}

}  // namespace vit::app
