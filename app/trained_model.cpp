#include "app/trained_model.h"

#include "app/checkpoint.h"
#include "app/model_json.h"

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

namespace vit::app {

TrainedModel load_trained_model(const std::filesystem::path& checkpoint, const CommonOptions& common, bool ema,
                                torch::Device device) {
  CheckpointReader reader(resolve_checkpoint(checkpoint));
  TrainedModel trained;
  trained.config =
      load_config_text(reader.config_yaml(), reader.file().string() + " (embedded config)", common_overrides(common));
  if (common.config_file) {
    trained.config.data = load_common_config(common, WithoutConfigFile::kUseFieldDefaults).data;
  }
  trained.class_names = reader.class_names();
  trained.model = models::VisionTransformer(trained.config.model.options);
  reader.load_model(trained.model, ema);
  spdlog::debug("{}: {} weights after {} steps ({} epochs), {} classes", reader.file().string(), ema ? "EMA" : "model",
                reader.state().step, reader.state().epoch, trained.class_names.size());
  trained.model->to(device);
  trained.model->eval();
  return trained;
}

std::string export_metadata(const TrainedModel& trained) {
  const auto& o = trained.config.model.options;
  const auto& t = trained.config.data.val_transforms;
  const auto per_channel = [&](const std::vector<double>& values, double fallback) {
    std::vector<double> expanded(static_cast<size_t>(o.in_chans), values.empty() ? fallback : values[0]);
    if (values.size() == expanded.size()) expanded = values;
    return expanded;
  };
  const nlohmann::json metadata = {
      {"format", "vitcpp-torchscript"},
      {"version", 1},
      {"image_size", o.image_size},
      {"in_chans", o.in_chans},
      {"mean", per_channel(t.mean, 0.0)},
      {"std", per_channel(t.std, 1.0)},
      {"resize", t.resize},
      {"crop_pct", t.crop_pct},
      {"center_crop", t.center_crop},
      {"class_names", trained.class_names},
      {"model", model_json(trained.config.model)},
      {"config_yaml", emit_config(trained.config)},
  };
  return metadata.dump(2);
}

}  // namespace vit::app
