#include "app/config/model_json.h"

#include "app/config/field_yaml.h"
#include "models/core/registry.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace vit::app {

nlohmann::json model_json(const ModelConfig& model, bool training_fields) {
  nlohmann::json json = {{"arch", model.options.arch()}, {"preset", model.preset}};
  for (const auto& field : models::architecture(model.options.arch()).fields()) {
    if (field.training_only && !training_fields) continue;  // the same model whatever these were while training
    std::visit([&](const auto& value) { json[field.key] = value; }, field.get(model.options));
  }
  return json;
}

std::string describe_fields(const ModelConfig& model) {
  std::vector<std::string> fields;
  for (const auto& field : models::architecture(model.options.arch()).fields()) {
    if (field.training_only) continue;
    fields.push_back(field.key + " " + field_text(field.get(model.options)));
  }
  return fmt::format("{}", fmt::join(fields, ", "));
}

std::string describe_model(const ModelConfig& model) {
  if (model.preset.empty()) return "custom";
  ModelConfig as_published;
  as_published.preset = model.preset;
  as_published.options = models::architecture(model.options.arch()).preset(model.preset);
  const auto ours = model_json(model);
  const auto published = model_json(as_published);
  std::vector<std::string> changed;
  for (const auto& [key, value] : ours.items()) {
    if (published[key] != value) changed.push_back(key);
  }
  if (changed.empty()) return model.preset;
  return fmt::format("custom ({} with {} changed)", model.preset, fmt::join(changed, ", "));
}

}  // namespace vit::app
