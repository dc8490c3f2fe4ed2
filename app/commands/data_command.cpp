#include "app/commands/data_command.h"

#include "app/commands/common_options.h"
#include "app/errors.h"
#include "app/io/file_util.h"
#include "app/train/loaders.h"
#include "data/synthetic_shapes.h"
#include "models/core/registry.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>

namespace vit::app {
namespace {

struct DataCommandOptions {
  CommonOptions common;
  std::string split = "train";
  std::string output;
  int64_t samples = 32;
  int64_t workers = 0;
  int64_t batch_size = 128;
  int64_t batches = 50;
  bool json = false;
};

constexpr int kGridColumns = 8;
constexpr int kMinTile = 96;
constexpr int kCaption = 18;
constexpr size_t kMaxSizeProbes = 2000;

std::shared_ptr<const data::Dataset> split_dataset(const data::DataSplits& splits, const std::string& split) {
  if (split == "train") return splits.train;
  if (!splits.val) throw ConfigError("the config has no validation data (set data.val or data.val_fraction)");
  return splits.val;
}

// Images per class, or for detection data objects per class.
void print_class_counts(const data::Dataset& dataset) {
  const auto& names = dataset.class_names();
  if (!dataset.labelled()) {
    std::cout << "no labels (images alone)\n";
    return;
  }
  std::vector<int64_t> counts(names.size(), 0);
  int64_t total = 0;
  for (size_t i = 0; i < dataset.size(); ++i) {
    if (dataset.has_objects()) {
      for (const auto& object : dataset.objects(i)) ++counts[static_cast<size_t>(object.category)];
    } else {
      ++counts[static_cast<size_t>(dataset.label(i))];
    }
  }
  for (const int64_t count : counts) total += count;
  std::cout << fmt::format("{:<24} {:>10} {:>7}\n", "class", dataset.has_objects() ? "objects" : "images", "share");
  for (size_t c = 0; c < names.size(); ++c) {
    std::cout << fmt::format("{:<24} {:>10} {:>6.1f}%\n", fmt::format("{} {}", c, names[c]), counts[c],
                             100.0 * static_cast<double>(counts[c]) / static_cast<double>(std::max<int64_t>(1, total)));
  }
}

void print_size_range(const data::Dataset& dataset) {
  const size_t probes = std::min(dataset.size(), kMaxSizeProbes);
  int64_t min_w = INT64_MAX, min_h = INT64_MAX, max_w = 0, max_h = 0;
  size_t unknown = 0;
  for (size_t p = 0; p < probes; ++p) {
    const auto size = dataset.stored_size(p * dataset.size() / probes);
    if (!size) {
      ++unknown;
      continue;
    }
    min_w = std::min(min_w, size->width);
    min_h = std::min(min_h, size->height);
    max_w = std::max(max_w, size->width);
    max_h = std::max(max_h, size->height);
  }
  const auto scope = probes < dataset.size() ? fmt::format("{} evenly spaced images", probes) : "all images";
  if (unknown == probes) {
    std::cout << fmt::format("image sizes: unknown from headers ({})\n", scope);
  } else {
    std::cout << fmt::format("image sizes: width {}..{}, height {}..{} ({}{})\n", min_w, max_w, min_h, max_h, scope,
                             unknown ? fmt::format(", {} without a readable header", unknown) : "");
  }
}

// Augmented samples (what the model sees, before normalization) with their labels.
cv::Mat sample_grid(const Config& config, const data::Dataset& dataset, bool training, int64_t samples, uint64_t seed) {
  const auto transform = make_transform(config, training);
  const int tile = std::max(kMinTile, transform.size());
  const int count = static_cast<int>(std::min<int64_t>(samples, static_cast<int64_t>(dataset.size())));
  const int rows = (count + kGridColumns - 1) / kGridColumns;
  cv::Mat grid(rows * (tile + kCaption), kGridColumns * tile, CV_8UC3, cv::Scalar(255, 255, 255));
  data::Random picker(seed, data::kSplitStream, 1, 0);
  const auto order = data::random_permutation(dataset.size(), picker);
  for (int i = 0; i < count; ++i) {
    const size_t index = order[static_cast<size_t>(i)];
    data::Random random(seed, data::kAugmentStream, 0, index);
    auto objects = dataset.objects(index);
    cv::Mat image = transform.augment(dataset.load(index, transform.channels()), random,
                                      dataset.has_objects() ? &objects : nullptr);
    cv::Mat bgr;
    cv::cvtColor(image, bgr, image.channels() == 1 ? cv::COLOR_GRAY2BGR : cv::COLOR_RGB2BGR);
    const double scale = static_cast<double>(tile) / image.cols;
    cv::resize(bgr, bgr, cv::Size(tile, tile), 0, 0, cv::INTER_NEAREST);
    // Detection data: the boxes as the transform moved them.
    for (const auto& object : objects) {
      cv::rectangle(bgr, cv::Point(static_cast<int>(object.x0 * scale), static_cast<int>(object.y0 * scale)),
                    cv::Point(static_cast<int>(object.x1 * scale), static_cast<int>(object.y1 * scale)),
                    cv::Scalar(0, 0, 255), 1);
    }
    const int x = (i % kGridColumns) * tile;
    const int y = (i / kGridColumns) * (tile + kCaption);
    bgr.copyTo(grid(cv::Rect(x, y, tile, tile)));
    const auto label = dataset.label(index);
    const auto caption = dataset.has_objects()     ? fmt::format("{} objects", objects.size())
                         : label == data::kNoLabel ? std::string()
                                                   : dataset.class_names()[static_cast<size_t>(label)].substr(0, 14);
    cv::putText(grid, caption, cv::Point(x + 3, y + tile + 13), cv::FONT_HERSHEY_SIMPLEX, 0.38, cv::Scalar(0, 0, 0), 1,
                cv::LINE_AA);
  }
  return grid;
}

int run_inspect(const DataCommandOptions& options) {
  const auto config = load_common_config(options.common, WithoutConfigFile::kUseDefaultConfig);
  const auto splits = open_checked_datasets(config);
  const auto dataset = split_dataset(splits, options.split);
  std::cout << fmt::format("split {}: {} images, {} classes\n\n", options.split, dataset->size(),
                           dataset->class_names().size());
  print_class_counts(*dataset);
  std::cout << "\n";
  print_size_range(*dataset);

  const std::filesystem::path output =
      options.output.empty() ? std::filesystem::path(config.output) / "inspect" : std::filesystem::path(options.output);
  std::filesystem::create_directories(output);
  const auto file = output / (options.split + "_samples.png");
  const auto grid = sample_grid(config, *dataset, options.split == "train", options.samples, config.train.seed);
  if (!cv::imwrite(file.string(), grid)) throw std::runtime_error(file.string() + ": cannot write the sample grid");
  std::cout << fmt::format("augmented samples: {}\n", file.string());
  return kExitSuccess;
}

int run_bench(const DataCommandOptions& options) {
  const auto config = load_common_config(options.common, WithoutConfigFile::kUseDefaultConfig);
  const auto splits = open_checked_datasets(config);
  LoaderRequest request;
  request.batch_size = options.batch_size;
  request.training = options.split == "train";
  request.seed = config.train.seed;
  request.workers = options.workers;
  auto loader = make_loader(config, split_dataset(splits, options.split), request);
  const int64_t warmup = 2;
  int64_t images = 0;
  int64_t batches = 0;
  int64_t epoch = 0;
  auto start = std::chrono::steady_clock::now();
  loader->start_epoch(epoch);
  while (batches < warmup + options.batches) {
    auto batch = loader->next();
    if (!batch) {
      loader->start_epoch(++epoch);
      continue;
    }
    if (++batches == warmup) {
      start = std::chrono::steady_clock::now();
    } else if (batches > warmup) {
      images += batch->images.size(0);
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double rate = static_cast<double>(images) / seconds;
  const int64_t workers =
      options.workers > 0 ? options.workers : (config.data.workers > 0 ? config.data.workers : data::default_workers());
  if (options.json) {
    std::cout << nlohmann::json{{"images_per_s", rate},
                                {"images", images},
                                {"seconds", seconds},
                                {"workers", workers},
                                {"batch_size", options.batch_size}}
                     .dump()
              << "\n";
  } else {
    std::cout << fmt::format("loader: {:.0f} images/s ({} images in {:.2f} s, {} workers, batch {})\n", rate, images,
                             seconds, workers, options.batch_size);
  }
  return kExitSuccess;
}

// The detector and recipe that `vit train --config DIR/detection.yaml` runs on the generated task.
Config synthetic_detection_config(const std::filesystem::path& dir, const data::SyntheticShapesOptions& shapes) {
  Config config;
  config.model.preset = "detr_shapes_64";
  config.model.options = models::architecture_of_preset(config.model.preset)->preset(config.model.preset);
  auto& d = config.data;
  d.train.kind = data::SourceKind::Coco;
  d.train.images = dir / "train";
  d.train.annotations = dir / "train.json";
  d.val = d.train;
  d.val->images = dir / "val";
  d.val->annotations = dir / "val.json";
  d.train_transforms.mean = d.val_transforms.mean = {0.5};
  d.train_transforms.std = d.val_transforms.std = {0.25};
  d.train_transforms.hflip = 0.5;
  auto& t = config.train;
  t.epochs = 90;  // about 25 minutes on 2 cores (bench/detection.md)
  t.batch_size = 32;
  t.lr = 5e-4;
  t.min_lr = 1e-5;
  t.weight_decay = 1e-4;
  t.warmup_epochs = 1.0;
  t.grad_clip = 0.1;
  t.amp = AmpMode::Bf16;
  t.keep_last = 1;
  t.seed = shapes.seed;
  config.output = (dir / "runs").string();
  return config;
}

int run_synth_detection(const std::string& output, const data::SyntheticShapesOptions& shapes) {
  const std::filesystem::path dir = output;
  data::write_synthetic_shapes(dir, shapes);
  write_text_atomically(dir / "detection.yaml",
                        emit_config(synthetic_detection_config(std::filesystem::absolute(dir), shapes)));
  std::cout << fmt::format(
      "wrote {} training and {} validation images of {} shape classes to {}; train with:\n  vit train --config {}\n",
      shapes.train_images, shapes.val_images, data::synthetic_shape_names().size(), dir.string(),
      (dir / "detection.yaml").string());
  return kExitSuccess;
}

}  // namespace

void add_data_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<DataCommandOptions>();
  auto* data = app.add_subcommand("data", "Inspect a dataset or measure the loader");
  data->require_subcommand(1);

  auto* inspect = data->add_subcommand("inspect", "Class counts, image sizes and a PNG grid of augmented samples");
  add_common_options(*inspect, options->common);
  inspect->add_option("--split", options->split, "train or val")->check(CLI::IsMember({"train", "val"}));
  inspect->add_option("-o,--output", options->output, "Folder for the sample grid (default: <output>/inspect)");
  inspect->add_option("--samples", options->samples, "Samples in the grid")->check(CLI::Range(1, 1024));
  inspect->footer("Examples:\n  vit data inspect\n  vit data inspect --config configs/cifar10_vit.yaml --split val");
  inspect->callback([options, &exit_code] { exit_code = run_inspect(*options); });

  auto* bench = data->add_subcommand("bench", "Measure loader throughput (images/s) over a number of batches");
  add_common_options(*bench, options->common);
  bench->add_option("--split", options->split, "train or val")->check(CLI::IsMember({"train", "val"}));
  bench->add_option("--workers", options->workers, "Loader threads (default: data.workers)")->check(CLI::Range(1, 256));
  bench->add_option("--batch-size", options->batch_size, "Images per batch")->check(CLI::Range(1, 65536));
  bench->add_option("--batches", options->batches, "Timed batches after 2 warm-up batches")
      ->check(CLI::Range(1, 1000000));
  bench->add_flag("--json", options->json, "Print one JSON object");
  bench->callback([options, &exit_code] { exit_code = run_bench(*options); });

  auto shapes = std::make_shared<data::SyntheticShapesOptions>();
  auto* synth = data->add_subcommand(
      "synth-detection",
      "Generate a small detection task (shapes on textured backgrounds, COCO format) and its config");
  synth->add_option("-o,--output", options->output, "Folder for the images, annotations and detection.yaml")
      ->required();
  synth->add_option("--seed", shapes->seed, "Decides every image");
  synth->add_option("--train-images", shapes->train_images, "Training images")->check(CLI::Range(1, 10000000));
  synth->add_option("--val-images", shapes->val_images, "Validation images")->check(CLI::Range(1, 10000000));
  synth->add_option("--max-objects", shapes->max_objects, "Objects per image, at most")->check(CLI::Range(1, 64));
  synth->footer(
      "Examples:\n  vit data synth-detection --output data/shapes\n  vit train --config data/shapes/detection.yaml");
  synth->callback([options, shapes, &exit_code] { exit_code = run_synth_detection(options->output, *shapes); });
}

}  // namespace vit::app
