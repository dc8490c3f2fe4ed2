#include "models/core/registry.h"

#include "models/detr/detr_architecture.h"
#include "models/mae/mae_architecture.h"
#include "models/swin/swin_architecture.h"
#include "models/vit/vit_architecture.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace vit::models {
namespace {

std::vector<std::unique_ptr<Architecture>>& registered() {
  static std::vector<std::unique_ptr<Architecture>> architectures = [] {
    std::vector<std::unique_ptr<Architecture>> known;
    known.push_back(make_vit_architecture());
    known.push_back(make_mae_architecture());
    known.push_back(make_swin_architecture());
    known.push_back(make_detr_architecture());
    return known;
  }();
  return architectures;
}

}  // namespace

ImportedModel Architecture::import_weights(NamedTensors /*weights*/, const ImportRequest& /*request*/) const {
  throw std::invalid_argument("model.arch " + name() + " cannot import weights yet");
}

const Architecture& architecture(const std::string& name) {
  for (const auto& known : registered()) {
    if (known->name() == name) return *known;
  }
  throw std::invalid_argument(
      fmt::format("unknown architecture '{}' (known: {})", name, fmt::join(architecture_names(), ", ")));
}

std::vector<std::string> architecture_names() {
  std::vector<std::string> names;
  for (const auto& known : registered()) names.push_back(known->name());
  return names;
}

void register_architecture(std::unique_ptr<Architecture> architecture) {
  for (const auto& known : registered()) {
    if (known->name() == architecture->name()) {
      throw std::invalid_argument("architecture '" + architecture->name() + "' is registered already");
    }
  }
  registered().push_back(std::move(architecture));
}

const Architecture* architecture_of_preset(const std::string& preset) {
  for (const auto& known : registered()) {
    for (const auto& name : known->preset_names()) {
      if (name == preset) return known.get();
    }
  }
  return nullptr;
}

std::vector<std::string> all_preset_names() {
  std::vector<std::string> names;
  for (const auto& known : registered()) {
    for (auto& name : known->preset_names()) names.push_back(std::move(name));
  }
  return names;
}

ModelOptions default_model_options() { return registered().front()->defaults(); }

void validate(const ModelOptions& options) { architecture(options.arch()).validate(options); }

ModelShape shape_of(const ModelOptions& options) { return architecture(options.arch()).shape(options); }

Objective objective_of(const ModelOptions& options) { return architecture(options.arch()).objective(); }

MaskedImageModel* masked_image_model(ImageModel& model) { return dynamic_cast<MaskedImageModel*>(model.get()); }
DetectionModel* detection_model(ImageModel& model) { return dynamic_cast<DetectionModel*>(model.get()); }

ImageModel build_model(const ModelOptions& options) { return architecture(options.arch()).build(options); }

}  // namespace vit::models
