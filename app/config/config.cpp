#include "app/config/config.h"

#include "app/config/config_sections.h"
#include "app/errors.h"
#include "data/errors.h"
#include "data/regular_file.h"

#include <yaml-cpp/depthguard.h>

#include <sstream>
#include <stdexcept>

namespace vit::app {
namespace {

YAML::Node parse_text(const std::string& text, const std::string& source) {
  try {
    auto root = YAML::Load(text);
    if (!root.IsNull() && !root.IsMap()) throw ConfigError(source + ": expected a mapping at the top level");
    return root.IsNull() ? YAML::Node(YAML::NodeType::Map) : root;
  } catch (const YAML::DeepRecursion& error) {
    // (yaml-cpp's own message for this one is "bad file")
    throw ConfigError(source + ":" + std::to_string(error.mark.line + 1) + ": YAML nested " +
                      std::to_string(error.depth()) + " levels deep, more than a config can be");
  } catch (const YAML::ParserException& error) {
    throw ConfigError(source + ":" + std::to_string(error.mark.line + 1) + ": not valid YAML: " + error.msg);
  }
}

YAML::Node parse_file(const std::filesystem::path& file) {
  std::string text;
  try {
    text = data::read_regular_text(file, "config", uint64_t{16} << 20);
  } catch (const data::DataError& error) {
    throw ConfigError(error.what());
  }
  return parse_text(text, file.string());
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
// booleans and lists such as [0.9,0.999] keep their types. Records the key in `overridden`.
void apply_override(YAML::Node& root, const std::string& assignment, YamlSection::Overrides& overridden) {
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
  overridden[assignment.substr(0, equals)] = assignment;
}

Config read_config(YAML::Node root, const std::string& source, const std::vector<std::string>& overrides) {
  auto overridden = std::make_shared<YamlSection::Overrides>();
  for (const auto& assignment : overrides) apply_override(root, assignment, *overridden);
  YamlSection top(root, "", source, overridden);
  Config config;
  const bool model_given = top.has("model");
  config.model = read_model(top.section("model"));
  config.model.given = model_given;
  config.data = read_data(top.section("data"));
  config.train = read_train(top.section("train"));
  top.read("output", config.output);
  top.finish();
  check_consistency(config, top);
  return config;
}

}  // namespace

void require_classification_head(const ModelConfig& model, const std::string& what) {
  if (models::objective_of(model.options) == models::Objective::MaskedImageModeling) {
    throw ConfigError("model.arch " + model.options.arch() + " pretrains an encoder and has no classes; " + what +
                      " needs a classifier: fine-tune one from its checkpoint with model.pretrained (`vit mae-show` "
                      "shows its reconstructions)");
  }
  if (models::shape_of(model.options).num_classes > 0) return;
  throw ConfigError("model.num_classes: 0 builds a model without a head (pooled features, for export); " + what +
                    " needs the number of classes");
}

void require_trainable(const ModelConfig& model, const std::string& what) {
  if (models::objective_of(model.options) == models::Objective::MaskedImageModeling) return;
  require_classification_head(model, what);
}

Config load_config(const std::optional<std::filesystem::path>& file, const std::vector<std::string>& overrides) {
  if (!file) return read_config(YAML::Node(YAML::NodeType::Map), "<defaults>", overrides);
  return read_config(parse_file(*file), file->string(), overrides);
}

Config load_config_text(const std::string& text, const std::string& source, const std::vector<std::string>& overrides) {
  return read_config(parse_text(text, source), source, overrides);
}

Config load_default_config(const std::vector<std::string>& overrides) {
  const std::string source = "configs/fashion_mnist_vit.yaml (built in)";
  return read_config(parse_text(default_config_text(), source), source, overrides);
}

}  // namespace vit::app
