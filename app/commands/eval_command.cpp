#include "app/commands/eval_command.h"

#include "app/commands/common_options.h"
#include "app/errors.h"
#include "app/io/checkpoint.h"
#include "app/io/csv.h"
#include "app/io/file_util.h"
#include "app/io/trained_model.h"
#include "app/runtime/runtime.h"
#include "app/train/evaluation.h"
#include "app/train/loaders.h"
#include "app/viz/plot.h"
#include "data/subset.h"
#include "models/core/registry.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cmath>
#include <iostream>

namespace vit::app {
namespace {

struct EvalOptions {
  CommonOptions common;
  std::string checkpoint;
  std::string output;
  std::string json;
  bool ema = false;
};

// A detector: COCO-style mAP@[.5:.95], AP50, AP75 and per-class AP on the validation split.
int run_detection_eval(const EvalOptions& options, TrainedModel& trained, torch::Device device,
                       const BatchShards& shards) {
  const auto& config = trained.config;
  const auto splits = open_checked_datasets(config);
  if (!splits.val) throw ConfigError("the config has no validation data to evaluate (data.val or data.val_fraction)");
  if (splits.val->class_names() != trained.class_names) {
    throw ConfigError(fmt::format("the data to evaluate has the categories [{}]; the detector was trained on [{}]",
                                  fmt::join(splits.val->class_names(), ", "), fmt::join(trained.class_names, ", ")));
  }
  LoaderRequest request;
  request.batch_size = config.train.batch_size;
  request.seed = config.train.seed;
  request.device = device;
  auto loader = make_loader(config, splits.val, request);
  const auto num_classes = models::shape_of(config.model.options).num_classes;
  const auto found = collect_detections(trained.model, *loader, device, config.train.amp == AmpMode::Bf16, shards);
  const auto precision = mean_average_precision(found.detections, found.objects, num_classes);
  std::cout << fmt::format("{} images, {} objects: mAP@[.5:.95] {:.4f}, AP50 {:.4f}, AP75 {:.4f}{}\n\n", found.images,
                           found.objects.size(), precision.map, precision.ap50, precision.ap75,
                           options.ema ? " (EMA weights)" : "");
  std::cout << fmt::format("{:<24} {:>9}\n", "class", "AP");
  nlohmann::json per_class = nlohmann::json::object();
  for (size_t c = 0; c < precision.per_class.size(); ++c) {
    const auto name = c < trained.class_names.size() ? trained.class_names[c] : std::to_string(c);
    const double ap = precision.per_class[c];
    if (std::isnan(ap)) continue;  // classes of the head that the data never shows
    std::cout << fmt::format("{:<24} {:>9.4f}\n", name, ap);
    per_class[name] = ap;
  }
  if (!options.json.empty()) {
    const nlohmann::json report = {{"map", precision.map},
                                   {"ap50", precision.ap50},
                                   {"ap75", precision.ap75},
                                   {"per_class", per_class},
                                   {"images", found.images},
                                   {"objects", found.objects.size()},
                                   {"checkpoint", options.checkpoint},
                                   {"ema", options.ema}};
    write_text_atomically(options.json, report.dump(2) + "\n");
  }
  return kExitSuccess;
}

int run_eval(const EvalOptions& options) {
  if (!options.json.empty()) refuse_overwriting_input(options.json, resolve_checkpoint(options.checkpoint), "--json");
  const auto [device, threads] = configure_machine(options.common);
  auto trained = load_trained_model(options.checkpoint, options.common, options.ema, device);
  if (models::detection_model(trained.model) != nullptr) {
    return run_detection_eval(options, trained, device, batch_shards_for(device, threads.count));
  }
  const auto& config = trained.config;
  require_classification_head(config.model, "evaluation");
  const auto splits = open_checked_datasets(config);
  if (!splits.val) throw ConfigError("the config has no validation data to evaluate (data.val or data.val_fraction)");
  // Scored by the checkpoint's class indices, matched by name: other data may number them otherwise.
  const auto images = data::align_classes(splits.val, trained.class_names, "the data to evaluate");
  LoaderRequest request;
  request.batch_size = config.train.batch_size;
  request.seed = config.train.seed;
  request.device = device;
  auto loader = make_loader(config, images, request);
  const auto num_classes = models::shape_of(config.model.options).num_classes;
  spdlog::info("evaluating {} images on {}, {} threads ({})", images->size(), device.str(), threads.count,
               threads.source);
  const auto result = evaluate(trained.model, *loader, num_classes, device, config.train.amp == AmpMode::Bf16,
                               batch_shards_for(device, threads.count));

  const auto& names = trained.class_names;
  const auto accuracy = result.per_class_accuracy();
  const auto name_of_class = [&](int64_t c) {
    return c < static_cast<int64_t>(names.size()) ? names[static_cast<size_t>(c)] : std::to_string(c);
  };
  std::cout << fmt::format("{} images: top-1 {:.2f}%, top-5 {:.2f}%, loss {:.4f}{}\n\n", result.samples,
                           100.0 * result.top1, 100.0 * result.top5, result.loss, options.ema ? " (EMA weights)" : "");
  std::cout << fmt::format("{:<24} {:>9}\n", "class", "top-1");
  const auto counts = result.confusion_counts();
  std::vector<std::string> class_labels;
  for (int64_t c = 0; c < num_classes; ++c) class_labels.push_back(name_of_class(c));
  std::vector<std::string> header = {"true\\predicted"};
  header.insert(header.end(), class_labels.begin(), class_labels.end());
  std::string csv = csv_row(header);
  for (int64_t r = 0; r < num_classes; ++r) {
    std::cout << fmt::format("{:<24} {:>8.2f}%\n", class_labels[static_cast<size_t>(r)],
                             100.0 * accuracy[static_cast<size_t>(r)]);
    std::vector<std::string> row = {class_labels[static_cast<size_t>(r)]};
    for (const int64_t count : counts[static_cast<size_t>(r)]) row.push_back(std::to_string(count));
    csv += csv_row(row);
  }
  const std::filesystem::path output = options.output.empty()
                                           ? resolve_checkpoint(options.checkpoint).parent_path() / "eval"
                                           : std::filesystem::path(options.output);
  std::filesystem::create_directories(output);
  write_text_atomically(output / "confusion.csv", csv);
  write_png(output / "confusion.png", confusion_heatmap(counts, class_labels));
  std::cout << fmt::format("\nconfusion matrix: {} and {}\n", (output / "confusion.csv").string(),
                           (output / "confusion.png").string());

  if (!options.json.empty()) {
    nlohmann::json per_class = nlohmann::json::object();
    for (int64_t c = 0; c < num_classes; ++c) per_class[name_of_class(c)] = accuracy[static_cast<size_t>(c)];
    const nlohmann::json report = {{"top1", result.top1},
                                   {"top5", result.top5},
                                   {"loss", result.loss},
                                   {"samples", result.samples},
                                   {"per_class", per_class},
                                   {"confusion", counts},
                                   {"checkpoint", options.checkpoint},
                                   {"ema", options.ema}};
    write_text_atomically(options.json, report.dump(2) + "\n");
  }
  return kExitSuccess;
}

}  // namespace

void add_eval_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<EvalOptions>();
  auto* command = app.add_subcommand("eval", "Evaluate a checkpoint on its config's validation data");
  add_common_options(*command, options->common, kConfigOptions | kDeviceOption | kThreadsOption);
  command->add_option("--checkpoint", options->checkpoint, "Checkpoint file or run directory")->required();
  command->add_option("-o,--output", options->output, "Folder for confusion.csv/png (default: <checkpoint dir>/eval)");
  command->add_option("--json", options->json, "Also write the results as JSON to this file");
  command->add_flag("--ema", options->ema, "Evaluate the EMA weights");
  command->footer(
      "Examples:\n"
      "  vit eval --checkpoint runs/fmnist/best.ckpt --json results.json\n"
      "  vit eval --checkpoint runs/fmnist --ema\n"
      "  vit eval --checkpoint runs/fmnist/last.ckpt --set data.val.split=train");
  command->callback([options, &exit_code] { exit_code = run_eval(*options); });
}

}  // namespace vit::app
