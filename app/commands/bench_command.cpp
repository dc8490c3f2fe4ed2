// Throughput of the pieces a training run is made of, on synthetic batches so that the data
// pipeline is out of the picture (`vit data bench` measures that). scripts/bench/reference.py
// runs the same measurements on a plain PyTorch implementation of the same model and step.
#include "app/commands/bench_command.h"

#include "app/commands/common_options.h"
#include "app/config/config_names.h"
#include "app/config/model_json.h"
#include "app/distributed/distributed.h"
#include "app/errors.h"
#include "app/io/exporter.h"
#include "app/io/file_util.h"
#include "app/runtime/blas_kernels.h"
#include "app/runtime/operator_profile.h"
#include "app/runtime/runtime.h"
#include "app/train/ema.h"
#include "app/train/evaluation.h"
#include "app/train/optimization.h"
#include "app/train/training_memory.h"
#include "app/train/training_step.h"
#include "models/core/registry.h"
#include "models/inspect/complexity.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/cuda.h>
#include <torch/script.h>
#include <torch/version.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <iostream>
#include <optional>

namespace vit::app {
namespace {

struct BenchOptions {
  CommonOptions common;
  std::string mode = "train";
  int64_t batch_size = 0;  // 0: train.batch_size (train, eval) or 64 (inference throughput)
  int64_t warmup = 5;
  int64_t steps = 20;
  int64_t repeats = 5;
  bool json = false;
  bool profile = false;  // after the timed repeats, `steps` more under LibTorch's profiler
  bool force = false;    // train mode: measure even when the memory estimate exceeds what is available
};

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t middle = values.size() / 2;
  return values.size() % 2 ? values[middle] : 0.5 * (values[middle - 1] + values[middle]);
}

// What a benchmark measured: seconds per step for each repeat, and with --profile the operators'
// times of `steps` further steps (profiled apart, so that the profiler's overhead stays out of the
// timed repeats).
struct Measured {
  std::vector<double> seconds;
  std::optional<OperatorProfile> profile;
};

// Seconds per call of `step` for each repeat, after `warmup` untimed calls; `end_of_repeat`
// runs inside the timed span after each repeat's calls (e.g. reading back what they computed).
Measured measure_steps(
    const BenchOptions& options, torch::Device device, const std::function<void()>& step,
    const std::function<void()>& end_of_repeat = [] {}) {
  const auto wait = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };
  for (int64_t i = 0; i < options.warmup; ++i) step();
  end_of_repeat();
  wait();
  std::vector<double> seconds;
  for (int64_t r = 0; r < options.repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < options.steps; ++i) step();
    end_of_repeat();
    wait();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() /
                      static_cast<double>(options.steps));
  }
  Measured measured{seconds, std::nullopt};
  if (options.profile) {
    measured.profile = profile_operators(step, options.steps);
    end_of_repeat();
  }
  return measured;
}

nlohmann::json profile_json(const OperatorProfile& profile) {
  auto operators = nlohmann::json::array();
  for (const auto& op : profile.operators) {
    operators.push_back({{"name", op.name},
                         {"shapes", op.shapes},
                         {"calls_per_step", op.calls_per_step},
                         {"ms_per_step", op.ms_per_step},
                         {"gflop_per_step", op.gflop_per_step}});
  }
  return {{"steps", profile.steps},
          {"ms_per_step", profile.ms_per_step()},
          {"product_ms_per_step", profile.product_ms_per_step()},
          {"product_gflop_per_step", profile.product_gflop_per_step()},
          {"operators", operators}};
}

// The images/s of each repeat, and the profile when there is one.
nlohmann::json throughput_json(const Measured& measured, int64_t images_per_step) {
  std::vector<double> rates;
  for (const double s : measured.seconds) rates.push_back(static_cast<double>(images_per_step) / s);
  nlohmann::json result = {{"images_per_s", rates}};
  if (measured.profile) result["profile"] = profile_json(*measured.profile);
  return result;
}

// The profile's largest operators as a table, and the matrix products' share and rate.
void print_profile(const nlohmann::json& profile) {
  constexpr size_t kRows = 25;
  const auto total = profile["ms_per_step"].get<double>();
  std::cout << fmt::format("profile of {} steps: self time per step, summed over the threads ({:.1f} ms)\n",
                           profile["steps"].get<int64_t>(), total);
  std::cout << fmt::format("{:>10} {:>6} {:>7} {:>8}  {}\n", "ms/step", "share", "calls", "GFLOP/s", "operator");
  const auto& operators = profile["operators"];
  for (size_t i = 0; i < std::min(kRows, operators.size()); ++i) {
    const auto& op = operators[i];
    const auto ms = op["ms_per_step"].get<double>(), gflop = op["gflop_per_step"].get<double>();
    const auto shapes = op["shapes"].get<std::string>();
    std::cout << fmt::format("{:>10.2f} {:>5.1f}% {:>7.1f} {:>8}  {}{}{}\n", ms, 100.0 * ms / total,
                             op["calls_per_step"].get<double>(),
                             gflop > 0 && ms > 0 ? fmt::format("{:.0f}", gflop / (ms / 1000.0)) : std::string(),
                             op["name"].get<std::string>(), shapes.empty() ? "" : " ", shapes);
  }
  const auto product_ms = profile["product_ms_per_step"].get<double>();
  const auto product_gflop = profile["product_gflop_per_step"].get<double>();
  if (product_ms > 0) {
    std::cout << fmt::format("matrix products: {:.1f} ms of {:.1f} ({:.1f} %), {:.1f} GFLOP a step, {:.0f} GFLOP/s\n",
                             product_ms, total, 100.0 * product_ms / total, product_gflop,
                             product_gflop / (product_ms / 1000.0));
  }
}

// A detector's matching costs and loss weights, for the Python reference's set loss.
nlohmann::json detection_json(const DetectionLossConfig& d) {
  return {{"cost_class", d.cost_class},
          {"cost_bbox", d.cost_bbox},
          {"cost_giou", d.cost_giou},
          {"bbox_loss_coef", d.bbox_loss_coef},
          {"giou_loss_coef", d.giou_loss_coef},
          {"eos_coef", d.eos_coef},
          {"aux_loss", d.aux_loss}};
}

// Optimizer steps exactly as `vit train` takes them (TrainingStep: autocast forward, fp32 loss,
// loss-scaled backward over train.grad_accum_steps micro-batches, unscaling, clipping, the
// optimizer step, EMA); the losses are read back once per timed repeat, as training reads them
// back every train.log_every steps.
nlohmann::json bench_train(const Config& config, const BenchOptions& options, torch::Device device,
                           const ThreadCount& threads) {
  const auto o = models::shape_of(config.model.options);
  const auto& train = config.train;
  auto model = models::build_model(config.model.options);
  // The slices `vit train` would take here, and its memory check: a bench that cannot fit says so.
  const auto shards = batch_shards_within_memory(models::measure_complexity(*model), train, options.batch_size, 0.0,
                                                 device, threads.count, options.force);
  model->to(device);
  model->train();
  auto optimizer = make_optimizer(model, train, shards);
  std::optional<ModelEma> ema;
  if (train.ema_decay > 0.0) ema.emplace(model, models::build_model(config.model.options), train.ema_decay);
  DataParallel single_process(RankEnvironment{}, train.distributed, device);
  TrainingStep training_step(model, *optimizer, ema ? &*ema : nullptr, single_process, train, device, nullptr, shards);
  TrainingStep::MicroBatch batch;
  batch.inputs = torch::randn({options.batch_size, o.in_chans, o.image_size, o.image_size}, device);
  if (auto* masked = models::masked_image_model(model)) {
    batch.mask_noise = torch::rand({options.batch_size, masked->mask_noise_size()}, device);
  } else if (models::detection_model(model) != nullptr) {
    // Two objects per image at random places: the matching and the set loss as training runs them.
    const int64_t objects = 2 * options.batch_size;
    const auto centres = torch::rand({objects, 2}, device) * 0.6 + 0.2;
    const auto sizes = torch::rand({objects, 2}, device) * 0.2 + 0.1;
    batch.objects = {torch::cat({centres, sizes}, 1),
                     torch::randint(o.num_classes, {objects}, torch::TensorOptions(device).dtype(torch::kLong)),
                     std::vector<int64_t>(static_cast<size_t>(options.batch_size), 2)};
  } else {
    batch.labels =
        torch::randint(o.num_classes, {options.batch_size}, torch::TensorOptions(device).dtype(torch::kLong));
  }
  std::vector<torch::Tensor> losses;
  const auto step = [&] {
    for (int64_t micro_batch = 1; micro_batch <= train.grad_accum_steps; ++micro_batch) {
      training_step.accumulate(batch, micro_batch == train.grad_accum_steps);
    }
    losses.push_back(training_step.apply(train.lr, false).mean_loss);
  };
  const auto read_back = [&] {
    if (!losses.empty()) (void)torch::stack(losses).cpu();
    losses.clear();
  };
  auto result =
      throughput_json(measure_steps(options, device, step, read_back), options.batch_size * train.grad_accum_steps);
  result["slices"] = shards.slices_for(options.batch_size);
  return result;
}

nlohmann::json bench_eval(const Config& config, const BenchOptions& options, torch::Device device,
                          const ThreadCount& threads) {
  const auto o = models::shape_of(config.model.options);
  auto model = models::build_model(config.model.options);
  model->to(device);
  model->eval();
  torch::NoGradGuard no_grad;
  const auto inputs = torch::randn({options.batch_size, o.in_chans, o.image_size, o.image_size}, device);
  const bool autocast = config.train.amp == AmpMode::Bf16;
  const auto shards = batch_shards_for(device, threads.count);
  const auto measured = measure_steps(
      options, device, [&] { (void)evaluation_forward(model, inputs, device, autocast, shards).argmax(1); });
  return throughput_json(measured, options.batch_size);
}

// The exported TorchScript module as a deployment would run it: fp32, inference mode, latency
// of single images and throughput of batches.
nlohmann::json bench_inference(const Config& config, const BenchOptions& options, torch::Device device) {
  const auto o = models::shape_of(config.model.options);
  auto model = models::build_model(config.model.options);
  model->to(device);
  const TemporaryDirectory folder("vit-bench");
  const auto file = folder.path() / "model.pt";
  export_model(model, ExportFormat::TorchScript, file, model_json(config.model).dump());
  auto module = torch::jit::load(file.string(), device);
  module.eval();
  c10::InferenceMode inference;
  const auto run = [&](int64_t batch, const BenchOptions& run_options) {
    const auto input = torch::randn({batch, o.in_chans, o.image_size, o.image_size}, device);
    return measure_steps(run_options, device, [&] { (void)module.forward({input}); });
  };
  BenchOptions latency_options = options;
  latency_options.profile = false;  // the profile is of the throughput's batches
  std::vector<double> latency_ms;
  for (const double s : run(1, latency_options).seconds) latency_ms.push_back(1000.0 * s);
  auto result = throughput_json(run(options.batch_size, options), options.batch_size);
  result["latency_ms_batch1"] = latency_ms;
  return result;
}

int run_bench(BenchOptions options) {
  const auto config = load_common_config(options.common, WithoutConfigFile::kUseDefaultConfig);
  const auto threads = configure_threads(config.train.threads);
  const auto device = select_device(config.train.device);
  if (options.mode == "train") require_trainable(config.model, "the training benchmark");
  if (options.batch_size == 0) options.batch_size = options.mode == "inference" ? 64 : config.train.batch_size;
  if (config.train.amp == AmpMode::Fp16 && !device.is_cuda()) {
    throw ConfigError("train.amp: fp16 needs a CUDA device; use bf16 on the CPU");
  }
  if (options.profile && !device.is_cpu()) {
    throw ConfigError("bench --profile: times the CPU's operators; train.device is " + device.str() +
                      " (use the CUDA profilers, e.g. nsys, there)");
  }
  torch::manual_seed(config.train.seed);

  nlohmann::json result = options.mode == "train"  ? bench_train(config, options, device, threads)
                          : options.mode == "eval" ? bench_eval(config, options, device, threads)
                                                   : bench_inference(config, options, device);
  for (const char* key : {"images_per_s", "latency_ms_batch1"}) {
    if (result.contains(key)) result[std::string(key) + "_median"] = median(result[key].get<std::vector<double>>());
  }
  const auto blas = loaded_blas();
  result.update({{"implementation", "vitcpp"},
                 {"mode", options.mode},
                 {"model", model_json(config.model, /*training_fields=*/true)},
                 {"train",
                  {{"optimizer", name_of(kOptimizerNames, config.train.optimizer)},
                   {"lr", config.train.lr},
                   {"weight_decay", config.train.weight_decay},
                   {"betas", {config.train.beta1, config.train.beta2}},
                   {"momentum", config.train.momentum},
                   {"grad_clip", config.train.grad_clip},
                   {"label_smoothing", config.train.label_smoothing},
                   {"grad_accum_steps", config.train.grad_accum_steps},
                   {"ema_decay", config.train.ema_decay},
                   {"batch_slices", config.train.batch_slices},
                   {"detection", detection_json(config.train.detection)}}},
                 {"batch_size", options.batch_size},
                 {"amp", name_of(kAmpNames, config.train.amp)},
                 {"device", device.str()},
                 {"threads", threads.count},
                 {"warmup", options.warmup},
                 {"steps", options.steps},
                 {"repeats", options.repeats},
                 {"peak_rss_mb", peak_rss_mb()},
                 {"libtorch", TORCH_VERSION},
                 {"blas", blas.name},
                 {"blas_kernels", blas_kernels().name},
                 {"bf16_products", bf16_products_name(chosen_bf16_products().products)},
                 {"allocator", loaded_allocator()}});
  if (options.json) {
    std::cout << result.dump() << "\n";
  } else {
    std::cout << fmt::format("{} {}, batch {}, amp {}: {:.1f} images/s (median of {})", options.mode,
                             describe_model(config.model), options.batch_size, result["amp"].get<std::string>(),
                             result["images_per_s_median"].get<double>(), options.repeats);
    if (result.contains("latency_ms_batch1_median")) {
      std::cout << fmt::format("; batch-1 latency {:.2f} ms", result["latency_ms_batch1_median"].get<double>());
    }
    std::cout << fmt::format("; peak RSS {:.0f} MB\n", result["peak_rss_mb"].get<double>());
    if (result.contains("profile")) print_profile(result["profile"]);
  }
  return kExitSuccess;
}

}  // namespace

void add_bench_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<BenchOptions>();
  auto* command = app.add_subcommand("bench", "Measure training-step, evaluation or TorchScript inference throughput");
  add_common_options(*command, options->common);
  command->add_option("--mode", options->mode, "train, eval or inference")
      ->check(CLI::IsMember({"train", "eval", "inference"}));
  command
      ->add_option("--batch-size", options->batch_size,
                   "Images per batch (default: train.batch_size; 64 for inference throughput)")
      ->check(CLI::Range(int64_t{1}, int64_t{65536}));
  command->add_option("--warmup", options->warmup, "Untimed steps first")
      ->check(CLI::Range(int64_t{0}, int64_t{100000}));
  command->add_option("--steps", options->steps, "Timed steps per repeat")
      ->check(CLI::Range(int64_t{1}, int64_t{100000}));
  command->add_option("--repeats", options->repeats, "Timed repeats; the median is reported")
      ->check(CLI::Range(int64_t{1}, int64_t{1000}));
  command->add_flag("--json", options->json, "Print one JSON object");
  command->add_flag("--profile", options->profile,
                    "Then run --steps more steps under LibTorch's profiler and report each operator's self time "
                    "(summed over threads; matrix products by shape, with GFLOP/s); CPU only");
  command->add_flag("--force", options->force,
                    "Train mode: measure even when the memory estimate exceeds the memory available (with "
                    "train.batch_slices 0, a slice per thread)");
  command->footer(
      "Examples:\n"
      "  vit bench                                   # training steps of the default Fashion-MNIST model\n"
      "  vit bench --mode eval --set train.amp=bf16\n"
      "  vit bench --set train.amp=bf16 --steps 3 --repeats 1 --profile   # where a training step's time goes\n"
      "  vit bench --mode inference --config configs/imagenet_vit_b16.yaml --batch-size 64 --json");
  command->callback([options, &exit_code] { exit_code = run_bench(*options); });
}

}  // namespace vit::app
