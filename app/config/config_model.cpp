#include "app/config/config_sections.h"
#include "app/config/field_yaml.h"
#include "models/core/registry.h"

#include <stdexcept>

namespace vit::app {
namespace {

// model.arch, or the architecture the preset belongs to; both given, they must agree.
const models::Architecture& read_architecture(YamlSection& section, ModelConfig& model) {
  std::string arch;
  section.read_choice("arch", arch, models::architecture_names());
  if (section.read("preset", model.preset)) {
    const auto* owner = models::architecture_of_preset(model.preset);
    if (owner == nullptr) {
      std::string known;
      for (const auto& name : models::all_preset_names()) known += (known.empty() ? "" : ", ") + name;
      section.fail("preset", "unknown model preset '" + model.preset + "' (known: " + known + ")");
    }
    if (!arch.empty() && arch != owner->name()) {
      section.fail("preset", "'" + model.preset + "' is a " + owner->name() + " preset, not model.arch " + arch);
    }
    model.options = owner->preset(model.preset);
    return *owner;
  }
  const auto& architecture = models::architecture(arch.empty() ? models::architecture_names().front() : arch);
  model.options = architecture.defaults();
  return architecture;
}

}  // namespace

ModelConfig read_model(YamlSection section) {
  ModelConfig model;
  const auto& architecture = read_architecture(section, model);
  read_fields(section, architecture.fields(), model.options);
  section.read("pretrained", model.pretrained);
  section.finish();
  try {
    architecture.validate(model.options);
  } catch (const std::invalid_argument& error) {
    section.fail("", error.what());
  }
  return model;
}

}  // namespace vit::app
