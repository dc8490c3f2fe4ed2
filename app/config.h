#pragma once

#include "data/data_options.h"
#include "models/vit_options.h"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace vit::app {

// The `model` section: a preset name, then explicit fields that override it.
struct ModelConfig {
  std::string preset;  // empty: every field from VitOptions' defaults and the explicit keys
  models::VitOptions options;
};

// The whole typed configuration, validated once when loaded; inner code never sees YAML.
struct Config {
  ModelConfig model;
  data::DataOptions data;
  std::string output = "runs";
};

// A config file (or none: the built-in defaults), then "key.path=value" overrides in order.
// Throws ConfigError naming the file, line and key of the first problem.
Config load_config(const std::optional<std::filesystem::path>& file, const std::vector<std::string>& overrides);
// configs/fashion_mnist_vit.yaml as built into the binary, then the overrides.
Config load_default_config(const std::vector<std::string>& overrides);
// The text of the built-in default configuration.
const char* default_config_text();

}  // namespace vit::app
