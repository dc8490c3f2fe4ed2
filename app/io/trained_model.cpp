#include "app/io/trained_model.h"

#include "app/config/model_json.h"
#include "app/io/checkpoint.h"
#include "models/core/registry.h"

#include "app/errors.h"
#include "data/transforms.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <set>

namespace vit::app {

namespace {

// The model's architecture comes from the checkpoint; only what acts in training alone (dropout
// rates) or before it (pretrained weights) may differ in `requested`.
void refuse_architecture_changes(const Config& recorded, const Config& requested, const std::string& where,
                                 const std::string& checkpoint) {
  std::set<std::string> training_only = {"model.pretrained"};
  for (const auto& field : models::architecture(recorded.model.options.arch()).fields()) {
    if (field.training_only) training_only.insert("model." + field.key);
  }
  for (const auto& change : config_changes(recorded, requested)) {
    if (change.key.rfind("model.", 0) != 0 || training_only.count(change.key) != 0) continue;
    throw ConfigError(
        fmt::format("{}: {} is {} in {}, the model the weights were trained as; the architecture comes "
                    "from the checkpoint and cannot be changed here (asked: {})",
                    where, change.key, change.from, checkpoint, change.to));
  }
}

}  // namespace

TrainedModel load_trained_model(const std::filesystem::path& checkpoint, const CommonOptions& common, bool ema,
                                torch::Device device) {
  CheckpointReader reader(resolve_checkpoint(checkpoint));
  const auto source = reader.file().string() + " (embedded config)";
  const auto recorded = load_config_text(reader.config_yaml(), source, {});
  TrainedModel trained;
  trained.config = load_config_text(reader.config_yaml(), source, common_overrides(common));
  refuse_architecture_changes(recorded, trained.config, "--set", reader.file().string());
  if (common.config_file) {
    const auto file = load_common_config(common, WithoutConfigFile::kUseFieldDefaults);
    if (file.model.given) {
      auto file_model = recorded;
      file_model.model = file.model;
      refuse_architecture_changes(recorded, file_model, *common.config_file, reader.file().string());
    }
    trained.config.data = file.data;
  }
  trained.class_names = reader.class_names();
  trained.category_ids = reader.category_ids();
  trained.model = models::build_model(trained.config.model.options);
  reader.load_model(trained.model, ema);
  spdlog::debug("{}: {} weights after {} steps ({} epochs), {} classes", reader.file().string(), ema ? "EMA" : "model",
                reader.state().step, reader.state().epoch, trained.class_names.size());
  trained.model->to(device);
  trained.model->eval();
  return trained;
}

std::string export_metadata(const TrainedModel& trained) {
  const auto o = models::shape_of(trained.config.model.options);
  const auto& t = trained.config.data.val_transforms;
  // The evaluation transform's per-channel mean and std, as the model was fed.
  const data::Transform transform(t, static_cast<int>(o.image_size), static_cast<int>(o.in_chans));
  nlohmann::json metadata = {
      {"format", "vitcpp-torchscript"},
      {"version", 1},
      {"image_size", o.image_size},
      {"in_chans", o.in_chans},
      {"mean", transform.mean()},
      {"std", transform.std()},
      {"resize", t.resize},
      {"crop_pct", t.crop_pct},
      {"center_crop", t.center_crop},
      {"class_names", trained.class_names},
      // A detector's module returns (class logits, boxes); a classifier's the logits.
      {"task", models::objective_of(trained.config.model.options) == models::Objective::Detection ? "detection"
                                                                                                  : "classification"},
      {"model", model_json(trained.config.model)},
      {"config_yaml", emit_config(trained.config)},
  };
  if (!trained.category_ids.empty()) metadata["category_ids"] = trained.category_ids;
  return metadata.dump(2);
}

}  // namespace vit::app
