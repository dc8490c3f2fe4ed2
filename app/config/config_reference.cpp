#include "app/config/config_reference.h"

#include "app/config/config.h"
#include "app/config/config_sections.h"
#include "models/core/registry.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <set>

namespace vit::app {
namespace {

std::string value_text(const models::FieldValue& value) {
  return std::visit(
      [](const auto& scalar) -> std::string {
        using T = std::decay_t<decltype(scalar)>;
        if constexpr (std::is_same_v<T, bool>) {
          return scalar ? "true" : "false";
        } else if constexpr (std::is_same_v<T, std::string>) {
          return scalar;
        } else if constexpr (std::is_same_v<T, std::vector<double>>) {
          return fmt::format("[{}]", fmt::join(scalar, ", "));
        } else {
          return fmt::format("{}", scalar);
        }
      },
      value);
}

// "0.080000000000000002" (config.yaml keeps every digit) as "0.08", in lists too.
std::string shortest(const std::string& value) {
  const auto node = YAML::Load(value);
  const auto number = [](const YAML::Node& scalar) {
    double parsed = 0.0;
    return YAML::convert<double>::decode(scalar, parsed) ? fmt::format("{}", parsed) : scalar.Scalar();
  };
  if (node.IsSequence()) {
    std::vector<std::string> items;
    for (const auto& item : node) items.push_back(number(item));
    return fmt::format("[{}]", fmt::join(items, ", "));
  }
  return node.IsScalar() && value.find_first_of("0123456789") != std::string::npos ? number(node) : value;
}

template <typename Struct>
void add_fields(std::vector<ConfigKey>& keys, const std::string& section,
                const std::vector<models::Field<Struct>>& fields, const Struct& defaults,
                const std::string& note = "") {
  for (const auto& field : fields) {
    keys.push_back({section + "." + field.key, value_text(field.get(defaults)), field.help + note});
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

// The data section as config.yaml writes it, with the optional parts present.
void add_data_keys(std::vector<ConfigKey>& keys) {
  Config config;
  config.data.val = config.data.train;
  config.data.val->split = "test";
  config.data.class_names = {"unset"};
  for (auto* transforms : {&config.data.train_transforms, &config.data.val_transforms}) {
    transforms->random_resized_crop.enabled = true;
    transforms->mean = {0.0};
    transforms->std = {1.0};
  }
  // Keys present only when set are listed without a default.
  const std::set<std::string> optional = {"data.class_names", "data.mean", "data.std"};
  for (const auto& [key, value] : config_leaves(config)) {
    if (key.rfind("data.", 0) != 0) continue;
    keys.push_back({key, optional.count(key) > 0 ? "" : shortest(value), ""});
  }
}

}  // namespace

std::vector<ConfigKey> config_reference() {
  std::vector<ConfigKey> keys;
  add_model_keys(keys);
  add_data_keys(keys);
  add_fields(keys, "train", train_fields(), TrainConfig{});
  keys.push_back({"output", Config{}.output, "where a run without --output gets its timestamped folder"});
  return keys;
}

}  // namespace vit::app
