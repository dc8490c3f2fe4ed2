#include "app/commands/predict_command.h"

#include "app/commands/common_options.h"
#include "app/commands/image_inputs.h"
#include "app/errors.h"
#include "app/io/trained_model.h"
#include "app/viz/attention_overlay.h"
#include "app/viz/plot.h"
#include "data/errors.h"
#include "data/image_file.h"
#include "data/json_integer.h"
#include "data/regular_file.h"
#include "data/transforms.h"
#include "models/core/detection_model.h"
#include "models/core/registry.h"
#include "models/inspect/attention_rollout.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <torch/script.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <functional>
#include <iostream>

namespace vit::app {
namespace {

namespace fs = std::filesystem;

struct PredictOptions {
  CommonOptions common;
  std::string model;
  std::vector<std::string> inputs;
  int64_t topk = 5;
  bool json = false;
  bool ema = false;
  std::string attention_map;
  double score_threshold = 0.5;  // detectors: the least score of a detection shown
  std::string overlay;           // detectors: a folder for the images with their boxes drawn
};

// What predict needs of a model, from a TorchScript file or a checkpoint alike.
struct Predictor {
  data::TransformOptions preprocessing;
  int64_t image_size = 0;
  int64_t in_chans = 0;
  std::vector<std::string> class_names;
  std::vector<int64_t> category_ids;  // a COCO-trained detector's category id of each class
  // A classifier's logits [B, classes], or a detector's (class logits [B, Q, C + 1], boxes [B, Q, 4]).
  std::function<c10::IValue(const torch::Tensor&)> outputs;
  bool detector = false;
  std::optional<TrainedModel> trained;  // set for checkpoints, which can also show attention
};

bool is_torchscript(const fs::path& file) {
  const auto extension = file.extension().string();
  return extension == ".pt" || extension == ".pth" || extension == ".torchscript";
}

Predictor load_predictor(const PredictOptions& options, torch::Device device) {
  Predictor predictor;
  if (is_torchscript(options.model)) {
    if (options.ema || options.common.config_file || !options.common.overrides.empty()) {
      throw ConfigError(options.model +
                        ": --ema, --config and --set apply to checkpoints; an exported model carries its own weights "
                        "and preprocessing");
    }
    torch::jit::ExtraFilesMap extra{{"config.json", ""}};
    torch::jit::Module module;
    data::require_regular_file(options.model, "TorchScript");
    try {
      module = torch::jit::load(options.model, device, extra);
    } catch (const std::exception&) {  // c10::Error, or the TorchScript parser's errors
      throw FileError(options.model + ": not a readable TorchScript file");
    }
    module.eval();
    nlohmann::json metadata;
    const auto whole_number = [&](const nlohmann::json& value, const char* key) {
      if (const auto number = data::json_integer(value)) return *number;
      throw FileError(options.model + ": config.json metadata's \"" + key + "\" is not a whole number (" +
                      value.dump() + ")");
    };
    try {
      metadata = nlohmann::json::parse(extra["config.json"]);
      predictor.image_size = whole_number(metadata.at("image_size"), "image_size");
      predictor.in_chans = whole_number(metadata.at("in_chans"), "in_chans");
      predictor.class_names = metadata.at("class_names").get<std::vector<std::string>>();
      for (const auto& id : metadata.value("category_ids", nlohmann::json::array()).get<nlohmann::json::array_t>()) {
        predictor.category_ids.push_back(whole_number(id, "category_ids"));
      }
      predictor.preprocessing.mean = metadata.at("mean").get<std::vector<double>>();
      predictor.preprocessing.std = metadata.at("std").get<std::vector<double>>();
      predictor.preprocessing.resize = whole_number(metadata.value("resize", nlohmann::json(0)), "resize");
      predictor.preprocessing.crop_pct = metadata.value("crop_pct", 0.0);
      predictor.preprocessing.center_crop = metadata.value("center_crop", false);
      predictor.detector = metadata.value("task", std::string("classification")) == "detection";
    } catch (const nlohmann::json::exception& error) {
      throw FileError(options.model + ": config.json metadata is missing or malformed (" + error.what() +
                      "); export it with vit export");
    }
    predictor.outputs = [module, file = options.model](const torch::Tensor& batch) mutable {
      try {
        return module.forward({batch});
      } catch (const std::exception& error) {
        // The interpreter's message (c10::Error or torch::jit::JITException) is a TorchScript
        // traceback; its last line says what failed.
        const auto* torch_error = dynamic_cast<const c10::Error*>(&error);
        std::string message = torch_error != nullptr ? torch_error->what_without_backtrace() : error.what();
        while (!message.empty() && message.back() == '\n') message.pop_back();
        throw FileError(fmt::format("{}: the module fails on a [{}] input: {}", file, fmt::join(batch.sizes(), ", "),
                                    message.substr(message.rfind('\n') + 1)));
      }
    };
    return predictor;
  }
  auto trained = load_trained_model(options.model, options.common, options.ema, device);
  predictor.preprocessing = trained.config.data.val_transforms;
  const auto shape = trained.model->shape();
  predictor.image_size = shape.image_size;
  predictor.in_chans = shape.in_chans;
  predictor.class_names = trained.class_names;
  predictor.category_ids = trained.category_ids;
  auto model = trained.model;
  if (auto* detector = models::detection_model(model)) {
    predictor.detector = true;
    predictor.outputs = [model, detector](const torch::Tensor& batch) -> c10::IValue {
      const auto predictions = detector->detect(batch);
      return c10::ivalue::Tuple::create({predictions.logits, predictions.boxes});
    };
  } else {
    predictor.outputs = [model](const torch::Tensor& batch) mutable -> c10::IValue { return model(batch); };
  }
  predictor.trained = std::move(trained);
  return predictor;
}

// The class-token attention rollout as a heatmap blended over the (preprocessed) image.
void write_attention_map(models::ImageModel& model, const PreparedImage& image, const fs::path& file) {
  torch::NoGradGuard no_grad;
  const auto layout = model->attention_layout();
  const auto device = model->parameters().front().device();
  const auto rollout =
      models::token_rollout(model->attention_maps(image.input.to(device)), layout.grid, 0, layout.prefix_tokens)[0];
  write_png(file, heatmap_overlay(rollout.cpu(), image.shown));
}

// A detector's objects in one image: those scored at least `threshold`, with boxes in the image
// file's pixels (the evaluation transform of a detector resizes the whole image).
nlohmann::json detected_objects(const c10::IValue& outputs, const Predictor& predictor, const fs::path& file,
                                double threshold) {
  const auto& elements = outputs.toTupleRef().elements();
  const auto [scores, classes] = models::object_scores(elements[0].toTensor()[0].to(torch::kCPU, torch::kFloat32));
  const auto boxes = elements[1].toTensor()[0].to(torch::kCPU, torch::kFloat32);
  const auto size = data::read_image_file_size(file);
  const double width = size ? static_cast<double>(size->width) : static_cast<double>(predictor.image_size);
  const double height = size ? static_cast<double>(size->height) : static_cast<double>(predictor.image_size);
  std::vector<std::pair<double, int64_t>> order;
  for (int64_t q = 0; q < scores.size(0); ++q) {
    if (scores[q].item<double>() >= threshold) order.emplace_back(-scores[q].item<double>(), q);
  }
  std::sort(order.begin(), order.end());
  nlohmann::json objects = nlohmann::json::array();
  for (const auto& [negative_score, q] : order) {
    const auto box = boxes[q];
    const double w = box[2].item<double>() * width, h = box[3].item<double>() * height;
    const double x = box[0].item<double>() * width - w / 2, y = box[1].item<double>() * height - h / 2;
    const auto index = classes[q].item<int64_t>();
    // COCO results name the annotation file's category; models of earlier releases only know the index.
    const bool known = index < static_cast<int64_t>(predictor.category_ids.size());
    objects.push_back({{"image_id", file.string()},
                       {"category_id", known ? predictor.category_ids[static_cast<size_t>(index)] : index},
                       {"category", index < static_cast<int64_t>(predictor.class_names.size())
                                        ? predictor.class_names[static_cast<size_t>(index)]
                                        : std::to_string(index)},
                       {"bbox", {x, y, w, h}},
                       {"score", -negative_score}});
  }
  return objects;
}

// The image file with its objects' boxes and names drawn.
void write_detection_overlay(const fs::path& file, const nlohmann::json& objects, const fs::path& target) {
  auto image = cv::imread(file.string(), cv::IMREAD_COLOR);
  if (image.empty()) throw data::DataError(file.string() + ": cannot be read for the overlay");
  // Small images are enlarged so that the labels stay readable.
  const double scale = std::max(1.0, 256.0 / std::min(image.cols, image.rows));
  if (scale > 1.0) cv::resize(image, image, {}, scale, scale, cv::INTER_NEAREST);
  const std::vector<cv::Scalar> colours = {
      {60, 60, 230}, {60, 200, 60}, {230, 120, 30}, {30, 200, 230}, {200, 60, 200}};
  for (const auto& object : objects) {
    const auto& box = object["bbox"];
    const auto colour = colours[object["category_id"].get<size_t>() % colours.size()];
    const cv::Rect rect(
        cv::Point(static_cast<int>(box[0].get<double>() * scale), static_cast<int>(box[1].get<double>() * scale)),
        cv::Size(static_cast<int>(box[2].get<double>() * scale), static_cast<int>(box[3].get<double>() * scale)));
    cv::rectangle(image, rect, colour, 2);
    cv::putText(image, fmt::format("{} {:.2f}", object["category"].get<std::string>(), object["score"].get<double>()),
                rect.tl() + cv::Point(2, 12), cv::FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv::LINE_AA);
  }
  if (!cv::imwrite(target.string(), image)) throw FileError(target.string() + ": cannot write the overlay");
}

int run_predict(const PredictOptions& options) {
  const auto [device, threads] = configure_machine(options.common);
  spdlog::debug("predicting on {}, {} threads ({})", device.str(), threads.count, threads.source);
  auto predictor = load_predictor(options, device);
  if (!options.attention_map.empty() && !predictor.trained) {
    throw ConfigError("--attention-map needs a checkpoint (the TorchScript module does not expose attention)");
  }
  if (!options.attention_map.empty() && predictor.trained->model->attention_layout().grid == 0) {
    throw ConfigError("--attention-map: model.arch " + predictor.trained->config.model.options.arch() +
                      " has no class-token attention to show");
  }
  const data::Transform transform(predictor.preprocessing, static_cast<int>(predictor.image_size),
                                  static_cast<int>(predictor.in_chans));
  const auto files = expand_image_inputs(options.inputs);
  if (files.empty()) throw ConfigError("no images found in the given inputs");
  nlohmann::json results = nlohmann::json::array();
  torch::NoGradGuard no_grad;
  if (!options.overlay.empty() && !predictor.detector)
    throw ConfigError("--overlay draws a detector's boxes; this model classifies");
  if (predictor.detector) {
    if (!options.overlay.empty()) fs::create_directories(options.overlay);
    const auto names = unique_names(files);
    for (size_t i = 0; i < files.size(); ++i) {
      const auto objects = detected_objects(predictor.outputs(prepare_image(files[i], transform).input.to(device)),
                                            predictor, files[i], options.score_threshold);
      results.insert(results.end(), objects.begin(), objects.end());
      if (!options.json) {
        std::cout << fmt::format("{}: {} objects\n", files[i].string(), objects.size());
        for (const auto& object : objects) {
          const auto& box = object["bbox"];
          std::cout << fmt::format("  {} {:.2f} at [{:.1f}, {:.1f}, {:.1f}, {:.1f}]\n",
                                   object["category"].get<std::string>(), object["score"].get<double>(),
                                   box[0].get<double>(), box[1].get<double>(), box[2].get<double>(),
                                   box[3].get<double>());
        }
      }
      if (!options.overlay.empty()) {
        write_detection_overlay(files[i], objects, fs::path(options.overlay) / (names[i] + ".png"));
      }
    }
    if (options.json) std::cout << results.dump(2) << "\n";
    return kExitSuccess;
  }
  for (size_t i = 0; i < files.size(); ++i) {
    const auto& file = files[i];
    const auto image = prepare_image(file, transform);
    const auto logits = predictor.outputs(image.input.to(device)).toTensor()[0].to(torch::kCPU, torch::kFloat32);
    const auto probabilities = logits.softmax(0);
    const auto k = std::min<int64_t>(options.topk, logits.size(0));
    const auto [top_p, top_i] = probabilities.topk(k);
    nlohmann::json top = nlohmann::json::array();
    std::string line = file.string() + ":";
    for (int64_t j = 0; j < k; ++j) {
      const auto index = top_i[j].item<int64_t>();
      const auto name = index < static_cast<int64_t>(predictor.class_names.size())
                            ? predictor.class_names[static_cast<size_t>(index)]
                            : std::to_string(index);
      top.push_back({{"index", index}, {"class", name}, {"prob", top_p[j].item<double>()}});
      line += fmt::format("  {}. {} {:.1f}%", j + 1, name, 100.0 * top_p[j].item<double>());
    }
    std::vector<double> logit_values(static_cast<size_t>(logits.size(0)));
    for (int64_t j = 0; j < logits.size(0); ++j) logit_values[static_cast<size_t>(j)] = logits[j].item<double>();
    results.push_back({{"path", file.string()}, {"topk", top}, {"logits", logit_values}});
    if (!options.json) std::cout << line << "\n";
    if (!options.attention_map.empty()) {
      fs::path target = options.attention_map;
      if (files.size() > 1) target.replace_filename(target.stem().string() + "_" + std::to_string(i) + ".png");
      write_attention_map(predictor.trained->model, image, target);
      if (!options.json) std::cout << "  attention rollout: " << target.string() << "\n";
    }
  }
  if (options.json) std::cout << results.dump(2) << "\n";
  return kExitSuccess;
}

}  // namespace

void add_predict_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<PredictOptions>();
  auto* command =
      app.add_subcommand("predict", "Classify images or detect objects with an exported model (.pt) or a checkpoint");
  add_common_options(*command, options->common, kConfigOptions | kDeviceOption | kThreadsOption);
  command->add_option("--model", options->model, "MODEL.pt from vit export, or a checkpoint / run directory")
      ->required();
  command->add_option("inputs", options->inputs, "Image files or folders")->required();
  command->add_option("--topk", options->topk, "Classes shown per image")->check(CLI::Range(1, 1000));
  command->add_flag("--json", options->json,
                    "Print [{path, topk: [{index, class, prob}], logits}]; a detector's: COCO results [{image_id, "
                    "category_id (the training annotations' id), category, bbox: [x, y, w, h] in pixels, "
                    "score}]");
  command->add_flag("--ema", options->ema, "With a checkpoint: use the EMA weights");
  command->add_option("--attention-map", options->attention_map,
                      "With a checkpoint: write the attention-rollout heatmap to this PNG");
  command->add_option("--score-threshold", options->score_threshold, "Detectors: the least score of an object shown")
      ->check(CLI::Range(0.0, 1.0));
  command->add_option("--overlay", options->overlay,
                      "Detectors: write each image with its boxes drawn to DIR/<name>.png");
  command->footer(
      "Examples:\n"
      "  vit predict --model fmnist.pt shoe.png bag.png\n"
      "  vit predict --model runs/fmnist/best.ckpt --attention-map attention.png shoe.png\n"
      "  vit predict --model fmnist.pt --topk 3 --json images/\n"
      "  vit predict --model shapes.pt --json --overlay boxes/ images/   # a detector: COCO results JSON");
  command->callback([options, &exit_code] { exit_code = run_predict(*options); });
}

}  // namespace vit::app
