#pragma once

#include "app/config.h"
#include "models/vision_transformer.h"

#include <filesystem>
#include <string>
#include <vector>

namespace vit::app {

// A model rebuilt from the config inside a checkpoint, with its weights (or EMA weights), in
// eval mode on `device`. `overrides` apply to the embedded config (e.g. to point it at other
// data); a model.* override that no longer fits the weights is a data::DataError.
struct TrainedModel {
  Config config;
  std::vector<std::string> class_names;
  models::VisionTransformer model{nullptr};
};

TrainedModel load_trained_model(const std::filesystem::path& checkpoint, const std::vector<std::string>& overrides,
                                bool ema, torch::Device device);

// The preprocessing and model description stored as config.json in exported TorchScript files.
std::string export_metadata(const TrainedModel& trained);

}  // namespace vit::app
