#pragma once

#include "app/commands/common_options.h"
#include "app/config/config.h"
#include "models/core/image_model.h"

#include <filesystem>
#include <string>
#include <vector>

namespace vit::app {

// A model rebuilt from the config inside a checkpoint, with its weights (or EMA weights), in
// eval mode on `device`. The command line's --set values apply to the embedded config, and with
// --config FILE, that file's data section (which images, how they are preprocessed) replaces the
// checkpoint's; a model.* override that no longer fits the weights is a data::DataError.
struct TrainedModel {
  Config config;
  std::vector<std::string> class_names;
  std::vector<int64_t> category_ids;  // the data's own class ids (COCO); empty for numbered classes
  models::ImageModel model{nullptr};
};

TrainedModel load_trained_model(const std::filesystem::path& checkpoint, const CommonOptions& common, bool ema,
                                torch::Device device);

// The preprocessing and model description stored as config.json in exported TorchScript files.
std::string export_metadata(const TrainedModel& trained);

}  // namespace vit::app
