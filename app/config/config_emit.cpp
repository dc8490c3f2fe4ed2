#include "app/config/config.h"
#include "app/config/config_names.h"
#include "app/config/config_sections.h"
#include "app/config/field_yaml.h"
#include "models/core/registry.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include <map>

namespace vit::app {
namespace {

template <typename T>
void field(YAML::Emitter& out, const char* key, const T& value) {
  out << YAML::Key << key << YAML::Value << value;
}

void emit_model(YAML::Emitter& out, const ModelConfig& model) {
  out << YAML::Key << "model" << YAML::Value << YAML::BeginMap;
  field(out, "arch", model.options.arch());
  // The preset is recorded for people; every field below is explicit, so it changes nothing.
  if (!model.preset.empty()) field(out, "preset", model.preset);
  emit_fields(out, models::architecture(model.options.arch()).fields(), model.options);
  if (!model.pretrained.empty()) field(out, "pretrained", model.pretrained);
  out << YAML::EndMap;
}

void emit_data(YAML::Emitter& out, const data::DataOptions& d) {
  out << YAML::Key << "data" << YAML::Value << YAML::BeginMap;
  emit_fields(out, data_fields(), d);
  out << YAML::EndMap;
}

void emit_train(YAML::Emitter& out, const TrainConfig& t) {
  out << YAML::Key << "train" << YAML::Value << YAML::BeginMap;
  emit_fields(out, train_fields(), t);
  out << YAML::EndMap;
}

// Every leaf of a config.yaml document by dotted key, in document order; lists as their flow text.
void flatten(const YAML::Node& node, const std::string& prefix,
             std::vector<std::pair<std::string, std::string>>& leaves) {
  for (const auto& item : node) {
    const auto key = prefix + item.first.Scalar();
    if (item.second.IsMap()) {
      flatten(item.second, key + ".", leaves);
    } else if (item.second.IsScalar()) {
      leaves.emplace_back(key, item.second.Scalar());
    } else {
      YAML::Emitter text;
      text << YAML::Flow << item.second;
      leaves.emplace_back(key, text.c_str());
    }
  }
}

std::map<std::string, std::string> leaves_of(const Config& config) {
  const auto leaves = config_leaves(config);
  return {leaves.begin(), leaves.end()};
}

}  // namespace

void emit_value(YAML::Emitter& out, const std::string& key, const models::FieldValue& value) {
  out << YAML::Key << key << YAML::Value;
  std::visit(
      [&](const auto& item) {
        using T = std::decay_t<decltype(item)>;
        if constexpr (std::is_same_v<T, std::vector<double>> || std::is_same_v<T, std::vector<std::string>>) {
          out << YAML::Flow << YAML::BeginSeq;
          for (const auto& element : item) out << element;
          out << YAML::EndSeq;
        } else {
          out << item;
        }
      },
      value);
}

std::string field_text(const models::FieldValue& value) {
  return std::visit(
      [](const auto& scalar) -> std::string {
        using T = std::decay_t<decltype(scalar)>;
        if constexpr (std::is_same_v<T, bool>) {
          return scalar ? "true" : "false";
        } else if constexpr (std::is_same_v<T, std::string>) {
          return scalar;
        } else if constexpr (std::is_same_v<T, std::vector<double>> || std::is_same_v<T, std::vector<std::string>>) {
          return fmt::format("[{}]", fmt::join(scalar, ", "));
        } else {
          return fmt::format("{}", scalar);
        }
      },
      value);
}

std::vector<std::pair<std::string, std::string>> config_leaves(const Config& config) {
  std::vector<std::pair<std::string, std::string>> leaves;
  flatten(YAML::Load(emit_config(config)), "", leaves);
  return leaves;
}

std::vector<ConfigChange> config_changes(const Config& from, const Config& to) {
  const auto before = leaves_of(from);
  const auto after = leaves_of(to);
  std::vector<ConfigChange> changes;
  for (const auto& [key, value] : before) {
    const auto found = after.find(key);
    if (found == after.end()) {
      changes.push_back({key, value, "(absent)"});
    } else if (found->second != value) {
      changes.push_back({key, value, found->second});
    }
  }
  for (const auto& [key, value] : after) {
    if (before.count(key) == 0) changes.push_back({key, "(absent)", value});
  }
  return changes;
}

std::string emit_config(const Config& config) {
  YAML::Emitter out;
  out.SetDoublePrecision(17);
  out << YAML::BeginMap;
  emit_model(out, config.model);
  emit_data(out, config.data);
  emit_train(out, config.train);
  field(out, "output", config.output);
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace vit::app
