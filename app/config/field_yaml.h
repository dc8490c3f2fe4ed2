#pragma once

// Reading and emitting declared fields (models/core/fields.h) as YAML: the one place that turns a
// field's declaration into parsing, validation and output.

#include "app/config/yaml_section.h"
#include "models/core/fields.h"

#include <yaml-cpp/yaml.h>

#include <map>
#include <string>
#include <utility>
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
  } else if (auto* numbers = std::get_if<std::vector<double>>(&value)) {
    given = field.interval ? section.read_interval(key, (*numbers)[0], (*numbers)[1], field.min, field.max)
                           : section.read(key, *numbers);
  } else {
    given = section.read(key, std::get<std::vector<std::string>>(value));
  }
  if (given && field.check) {
    if (const auto problem = field.check(value); !problem.empty()) section.fail(key, problem);
  }
  return given;
}

// Every field of `fields` that `section` gives, into `target`; nested keys
// ("train_transforms.color_jitter.hue") from the nested mappings, which then reject keys nobody
// declared.
template <typename Struct>
void read_fields(YamlSection& section, const std::vector<models::Field<Struct>>& fields, Struct& target) {
  std::map<std::string, YamlSection> nested;  // by dotted path below `section`
  for (const auto& field : fields) {
    auto* holder = &section;
    std::string path;
    auto key = field.key;
    for (auto dot = key.find('.'); dot != std::string::npos; dot = key.find('.')) {
      const auto name = key.substr(0, dot);
      path += (path.empty() ? "" : ".") + name;
      auto found = nested.find(path);
      if (found == nested.end()) found = nested.emplace(path, holder->section(name)).first;
      holder = &found->second;
      key = key.substr(dot + 1);
    }
    // An optional part that is absent (no validation source) has nothing to read, or to read into.
    if (field.present && !field.present(target) && !holder->has(key)) continue;
    auto value = field.get(target);
    if (read_field_value(*holder, key, field, value)) field.set(target, value);
  }
  for (const auto& [path, inner] : nested) inner.finish();
}

void emit_value(YAML::Emitter& out, const std::string& key, const models::FieldValue& value);
// A value as one line of text: "true", "0.08", "learned", "[0.9, 0.999]".
std::string field_text(const models::FieldValue& value);

// The fields (keys relative to the current mapping) in declaration order. A nested mapping of
// plain keys is written as a flow map ({a: 1, b: 2}), one holding mappings as a block.
template <typename Struct>
void emit_fields(YAML::Emitter& out, const std::vector<std::pair<std::string, const models::Field<Struct>*>>& fields,
                 const Struct& source) {
  for (size_t i = 0; i < fields.size();) {
    const auto& [key, field] = fields[i];
    const auto dot = key.find('.');
    if (dot == std::string::npos) {
      if (!field->present || field->present(source)) emit_value(out, key, field->get(source));
      ++i;
      continue;
    }
    const auto name = key.substr(0, dot);
    std::vector<std::pair<std::string, const models::Field<Struct>*>> group;
    bool any_present = false;
    bool has_mappings = false;
    for (; i < fields.size() && fields[i].first.compare(0, dot + 1, name + ".") == 0; ++i) {
      auto rest = fields[i].first.substr(dot + 1);
      has_mappings = has_mappings || rest.find('.') != std::string::npos;
      any_present = any_present || !fields[i].second->present || fields[i].second->present(source);
      group.emplace_back(std::move(rest), fields[i].second);
    }
    if (!any_present) continue;
    out << YAML::Key << name << YAML::Value;
    if (!has_mappings) out << YAML::Flow;
    out << YAML::BeginMap;
    emit_fields(out, group, source);
    out << YAML::EndMap;
  }
}

template <typename Struct>
void emit_fields(YAML::Emitter& out, const std::vector<models::Field<Struct>>& fields, const Struct& source) {
  std::vector<std::pair<std::string, const models::Field<Struct>*>> keyed;
  for (const auto& field : fields) keyed.emplace_back(field.key, &field);
  emit_fields(out, keyed, source);
}

}  // namespace vit::app
