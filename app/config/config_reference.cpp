#include "app/config/config_reference.h"

#include "app/config/config.h"
#include "app/config/config_sections.h"
#include "app/config/field_yaml.h"
#include "models/core/registry.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace vit::app {
namespace {

template <typename Struct>
void add_fields(std::vector<ConfigKey>& keys, const std::string& section,
                const std::vector<models::Field<Struct>>& fields, const Struct& defaults,
                const std::string& note = "") {
  for (const auto& field : fields) {
    // A key that is only there when given (class names, normalization statistics) has no default.
    const bool unset = field.present && !field.present(defaults);
    keys.push_back({section + "." + field.key, unset ? "" : field_text(field.get(defaults)), field.help + note});
  }
}

void add_model_keys(std::vector<ConfigKey>& keys) {
  const auto names = models::architecture_names();
  keys.push_back({"model.arch", names.front(),
                  fmt::format("the architecture: {} (a preset implies its own)", fmt::join(names, " | "))});
  keys.push_back({"model.preset", "",
                  "a preset's fields, which the keys below override: " +
                      fmt::format("{}", fmt::join(models::all_preset_names(), ", "))});
  for (const auto& name : names) {
    const auto& architecture = models::architecture(name);
    add_fields(keys, "model", architecture.fields(), architecture.defaults(),
               names.size() > 1 ? " (arch " + name + ")" : "");
  }
  keys.push_back({"model.pretrained", "", "a checkpoint (e.g. from `vit import`) whose weights start training"});
}

// The data section's defaults with its optional parts (a validation source, random resized
// crops) switched on, so that their keys show.
data::DataOptions data_defaults() {
  data::DataOptions d;
  d.val = d.train;
  d.val->split = "test";
  d.train_transforms.random_resized_crop.enabled = true;
  d.val_transforms.random_resized_crop.enabled = true;
  return d;
}

}  // namespace

std::vector<ConfigKey> config_reference() {
  // Named rather than temporaries: inlined with other files, g++ 12 takes the temporaries' strings
  // for uninitialised (-Wmaybe-uninitialized).
  const Config defaults;
  std::vector<ConfigKey> keys;
  add_model_keys(keys);
  add_fields(keys, "data", data_fields(), data_defaults());
  add_fields(keys, "train", train_fields(), defaults.train);
  keys.push_back({"output", defaults.output, "where a run without --output gets its timestamped folder"});
  return keys;
}

}  // namespace vit::app
