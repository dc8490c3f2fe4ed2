#pragma once

#include "models/core/architecture.h"
#include "models/core/detection_model.h"
#include "models/core/masked_image_model.h"

#include <memory>
#include <string>
#include <vector>

namespace vit::models {

// The architectures the program knows, by model.arch name; the first is the default.
const Architecture& architecture(const std::string& name);  // throws std::invalid_argument listing the names
std::vector<std::string> architecture_names();
// Adds an architecture (tests add toy ones); throws std::invalid_argument for a taken name.
void register_architecture(std::unique_ptr<Architecture> architecture);

// Presets of every architecture. The architecture a preset belongs to, or nullptr.
const Architecture* architecture_of_preset(const std::string& preset);
std::vector<std::string> all_preset_names();

ImageModel build_model(const ModelOptions& options);
// The model's masked-image-modelling side (MAE), or nullptr for a model without one.
MaskedImageModel* masked_image_model(ImageModel& model);
// The model's detection side (DETR), or nullptr for a model without one.
DetectionModel* detection_model(ImageModel& model);

}  // namespace vit::models
