#include "app/config.h"

#include "app/errors.h"
#include "app/yaml_section.h"
#include "models/presets.h"

#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace vit::app {
namespace {

constexpr int64_t kMaxInt = std::numeric_limits<int32_t>::max();

YAML::Node parse_file(const std::filesystem::path& file) {
  std::ifstream stream(file);
  if (!stream) throw ConfigError(file.string() + ": cannot open config file");
  try {
    auto root = YAML::Load(stream);
    if (!root.IsNull() && !root.IsMap()) throw ConfigError(file.string() + ": expected a mapping at the top level");
    return root.IsNull() ? YAML::Node(YAML::NodeType::Map) : root;
  } catch (const YAML::ParserException& error) {
    throw ConfigError(file.string() + ":" + std::to_string(error.mark.line + 1) + ": not valid YAML: " + error.msg);
  }
}

void assign_path(YAML::Node node, const std::vector<std::string>& keys, size_t index, const YAML::Node& value) {
  if (index + 1 == keys.size()) {
    node[keys[index]] = value;
    return;
  }
  YAML::Node child = node[keys[index]];
  if (!child.IsMap()) child = YAML::Node(YAML::NodeType::Map);
  assign_path(child, keys, index + 1, value);
}

// "model.dim=128" -> root["model"]["dim"] = 128; the value is parsed as YAML so that numbers,
// booleans and lists such as [0.9,0.999] keep their types.
void apply_override(YAML::Node& root, const std::string& assignment) {
  const auto equals = assignment.find('=');
  if (equals == std::string::npos || equals == 0) {
    throw ConfigError("--set " + assignment + ": expected key.path=value");
  }
  std::vector<std::string> keys;
  std::stringstream path(assignment.substr(0, equals));
  for (std::string key; std::getline(path, key, '.');) {
    if (key.empty()) throw ConfigError("--set " + assignment + ": empty key in path");
    keys.push_back(key);
  }
  YAML::Node value;
  try {
    value = YAML::Load(assignment.substr(equals + 1));
  } catch (const YAML::ParserException& error) {
    throw ConfigError("--set " + assignment + ": value is not valid YAML: " + error.msg);
  }
  assign_path(root, keys, 0, value);
}

ModelConfig read_model(YamlSection section) {
  ModelConfig model;
  if (section.read("preset", model.preset)) {
    try {
      model.options = models::preset(model.preset);
    } catch (const std::invalid_argument& error) {
      section.fail("preset", error.what());
    }
  }
  auto& o = model.options;
  section.read_int("image_size", o.image_size, 1, 65536);
  section.read_int("patch_size", o.patch_size, 1, 65536);
  section.read_int("in_chans", o.in_chans, 1, 64);
  section.read_int("num_classes", o.num_classes, 0, kMaxInt);
  section.read_int("dim", o.embed_dim, 1, 65536);
  section.read_int("depth", o.depth, 1, 1024);
  section.read_int("heads", o.num_heads, 1, 1024);
  section.read_double("mlp_ratio", o.mlp_ratio, 1e-3, 64.0);
  section.read("qkv_bias", o.qkv_bias);
  section.read_choice<models::PosEmbedKind>("pos_embed", o.pos_embed,
                                            {{"learned", models::PosEmbedKind::Learned},
                                             {"sincos", models::PosEmbedKind::SinCos2d},
                                             {"sinusoid", models::PosEmbedKind::Sinusoid1d},
                                             {"none", models::PosEmbedKind::None}});
  section.read_choice<models::PoolKind>("pool", o.pool,
                                        {{"cls", models::PoolKind::Cls}, {"mean", models::PoolKind::Mean}});
  section.read_double("dropout", o.drop_rate, 0.0, 0.999);
  section.read_double("attn_dropout", o.attn_drop_rate, 0.0, 0.999);
  section.read_double("drop_path", o.drop_path_rate, 0.0, 0.999);
  section.read_double("layer_scale", o.layer_scale_init, 0.0, 1e3);
  section.finish();
  try {
    o.validate();
  } catch (const std::invalid_argument& error) {
    section.fail("", error.what());
  }
  return model;
}

}  // namespace

Config load_config(const std::optional<std::filesystem::path>& file, const std::vector<std::string>& overrides) {
  YAML::Node root = file ? parse_file(*file) : YAML::Node(YAML::NodeType::Map);
  for (const auto& assignment : overrides) apply_override(root, assignment);

  YamlSection top(root, "", file ? file->string() : "<defaults>");
  Config config;
  config.model = read_model(top.section("model"));
  top.read("output", config.output);
  top.finish();
  return config;
}

}  // namespace vit::app
