#include "app/config/config.h"
#include "app/config/config_names.h"
#include "app/config/config_sections.h"
#include "app/config/field_yaml.h"
#include "models/core/registry.h"

#include <yaml-cpp/yaml.h>

#include <map>

namespace vit::app {
namespace {

template <typename T>
void field(YAML::Emitter& out, const char* key, const T& value) {
  out << YAML::Key << key << YAML::Value << value;
}

void flow_list(YAML::Emitter& out, const char* key, const std::vector<double>& values) {
  out << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (const double value : values) out << value;
  out << YAML::EndSeq;
}

void interval(YAML::Emitter& out, const char* key, double low, double high) { flow_list(out, key, {low, high}); }

void emit_model(YAML::Emitter& out, const ModelConfig& model) {
  out << YAML::Key << "model" << YAML::Value << YAML::BeginMap;
  field(out, "arch", model.options.arch());
  // The preset is recorded for people; every field below is explicit, so it changes nothing.
  if (!model.preset.empty()) field(out, "preset", model.preset);
  emit_fields(out, models::architecture(model.options.arch()).fields(), model.options);
  if (!model.pretrained.empty()) field(out, "pretrained", model.pretrained);
  out << YAML::EndMap;
}

void emit_source(YAML::Emitter& out, const char* key, const data::SourceOptions& source) {
  out << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginMap;
  field(out, "source", name_of(kSourceNames, source.kind));
  field(out, "path", source.path.string());
  field(out, "split", source.split);
  out << YAML::EndMap;
}

void emit_transforms(YAML::Emitter& out, const char* key, const data::TransformOptions& t) {
  out << YAML::Key << key << YAML::Value << YAML::BeginMap;
  field(out, "resize", t.resize);
  field(out, "crop_pct", t.crop_pct);
  field(out, "center_crop", t.center_crop);
  if (t.random_resized_crop.enabled) {
    out << YAML::Key << "random_resized_crop" << YAML::Value << YAML::BeginMap;
    interval(out, "scale", t.random_resized_crop.scale_min, t.random_resized_crop.scale_max);
    interval(out, "ratio", t.random_resized_crop.ratio_min, t.random_resized_crop.ratio_max);
    out << YAML::EndMap;
  }
  field(out, "random_crop_padding", t.random_crop_padding);
  field(out, "hflip", t.hflip);
  out << YAML::Key << "color_jitter" << YAML::Value << YAML::Flow << YAML::BeginMap;
  field(out, "brightness", t.color_jitter.brightness);
  field(out, "contrast", t.color_jitter.contrast);
  field(out, "saturation", t.color_jitter.saturation);
  field(out, "hue", t.color_jitter.hue);
  out << YAML::EndMap;
  out << YAML::Key << "rand_augment" << YAML::Value << YAML::Flow << YAML::BeginMap;
  field(out, "num_ops", t.rand_augment.num_ops);
  field(out, "magnitude", t.rand_augment.magnitude);
  field(out, "num_magnitude_bins", t.rand_augment.num_magnitude_bins);
  out << YAML::EndMap;
  out << YAML::Key << "random_erasing" << YAML::Value << YAML::BeginMap;
  field(out, "p", t.random_erasing.probability);
  interval(out, "scale", t.random_erasing.scale_min, t.random_erasing.scale_max);
  interval(out, "ratio", t.random_erasing.ratio_min, t.random_erasing.ratio_max);
  out << YAML::EndMap;
  out << YAML::EndMap;
}

void emit_data(YAML::Emitter& out, const data::DataOptions& d) {
  out << YAML::Key << "data" << YAML::Value << YAML::BeginMap;
  emit_source(out, "train", d.train);
  if (d.val) emit_source(out, "val", *d.val);
  field(out, "val_fraction", d.val_fraction);
  field(out, "split_seed", d.split_seed);
  if (!d.class_names.empty()) {
    out << YAML::Key << "class_names" << YAML::Value << YAML::Flow << d.class_names;
  }
  field(out, "workers", d.workers);
  field(out, "prefetch", d.prefetch_batches);
  field(out, "on_bad_sample", name_of(kBadSampleNames, d.on_bad_sample));
  field(out, "max_pixels", d.max_pixels);
  // Both splits share the normalization statistics.
  if (!d.train_transforms.mean.empty()) flow_list(out, "mean", d.train_transforms.mean);
  if (!d.train_transforms.std.empty()) flow_list(out, "std", d.train_transforms.std);
  emit_transforms(out, "train_transforms", d.train_transforms);
  emit_transforms(out, "val_transforms", d.val_transforms);
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
  if (const auto* numbers = std::get_if<std::vector<double>>(&value)) {
    out << YAML::Flow << YAML::BeginSeq;
    for (const double number : *numbers) out << number;
    out << YAML::EndSeq;
  } else {
    std::visit(
        [&](const auto& scalar) {
          if constexpr (!std::is_same_v<std::decay_t<decltype(scalar)>, std::vector<double>>) out << scalar;
        },
        value);
  }
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
