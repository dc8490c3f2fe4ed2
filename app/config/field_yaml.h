#pragma once

// Reading and emitting declared fields (models/core/fields.h) as YAML: the one place that turns a
// field's declaration into parsing, validation and output.

#include "app/config/yaml_section.h"
#include "models/core/fields.h"

#include <yaml-cpp/yaml.h>

#include <map>
#include <string>
#include <vector>

namespace vit::app {

// The value at `key` of `section` into `value`, held to the field's type, range, choices and check;
// false (value untouched) when the key is absent.
template <typename Struct>
bool read_field_value(YamlSection& section, const std::string& key, const models::Field<Struct>& field,
                      models::FieldValue& value) {
  bool given = false;
  if (auto* flag = std::get_if<bool>(&value)) {
    given = section.read(key, *flag);
  } else if (auto* integer = std::get_if<int64_t>(&value)) {
    given = section.read_int(key, *integer, field.integer_min, field.integer_max);
  } else if (auto* number = std::get_if<double>(&value)) {
    given = section.read_double(key, *number, field.min, field.max);
  } else if (auto* text = std::get_if<std::string>(&value)) {
    given = field.choices.empty() ? section.read(key, *text) : section.read_choice(key, *text, field.choices);
  } else {
    given = section.read(key, std::get<std::vector<double>>(value));
  }
  if (given && field.check) {
    if (const auto problem = field.check(value); !problem.empty()) section.fail(key, problem);
  }
  return given;
}

// Every field of `fields` that `section` gives, into `target`; nested keys ("mixup.prob") from
// the nested mappings, which then reject keys nobody declared.
template <typename Struct>
void read_fields(YamlSection& section, const std::vector<models::Field<Struct>>& fields, Struct& target) {
  std::map<std::string, YamlSection> nested;
  for (const auto& field : fields) {
    auto* holder = &section;
    auto key = field.key;
    if (const auto dot = key.find('.'); dot != std::string::npos) {
      const auto prefix = key.substr(0, dot);
      holder = &nested.try_emplace(prefix, section.section(prefix)).first->second;
      key = key.substr(dot + 1);
    }
    auto value = field.get(target);
    if (read_field_value(*holder, key, field, value)) field.set(target, value);
  }
  for (const auto& [prefix, inner] : nested) inner.finish();
}

void emit_value(YAML::Emitter& out, const std::string& key, const models::FieldValue& value);

// The fields as YAML keys in declaration order; the fields of a nested mapping as a flow map.
template <typename Struct>
void emit_fields(YAML::Emitter& out, const std::vector<models::Field<Struct>>& fields, const Struct& source) {
  std::string open_prefix;
  for (const auto& field : fields) {
    const auto dot = field.key.find('.');
    const auto prefix = dot == std::string::npos ? std::string() : field.key.substr(0, dot);
    if (prefix != open_prefix) {
      if (!open_prefix.empty()) out << YAML::EndMap;
      if (!prefix.empty()) out << YAML::Key << prefix << YAML::Value << YAML::Flow << YAML::BeginMap;
      open_prefix = prefix;
    }
    emit_value(out, prefix.empty() ? field.key : field.key.substr(dot + 1), field.get(source));
  }
  if (!open_prefix.empty()) out << YAML::EndMap;
}

}  // namespace vit::app
