#include "app/config.h"

#include "app/config_sections.h"
#include "app/errors.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace vit::app {
namespace {

YAML::Node parse_text(const std::string& text, const std::string& source) {
  try {
    auto root = YAML::Load(text);
    if (!root.IsNull() && !root.IsMap()) throw ConfigError(source + ": expected a mapping at the top level");
    return root.IsNull() ? YAML::Node(YAML::NodeType::Map) : root;
  } catch (const YAML::ParserException& error) {
    throw ConfigError(source + ":" + std::to_string(error.mark.line + 1) + ": not valid YAML: " + error.msg);
  }
}

YAML::Node parse_file(const std::filesystem::path& file) {
  std::ifstream stream(file);
  if (!stream) throw ConfigError(file.string() + ": cannot open config file");
  std::stringstream text;
  text << stream.rdbuf();
  return parse_text(text.str(), file.string());
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

Config read_config(YAML::Node root, const std::string& source, const std::vector<std::string>& overrides) {
  for (const auto& assignment : overrides) apply_override(root, assignment);
  YamlSection top(root, "", source);
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
