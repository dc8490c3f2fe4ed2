#pragma once

#include "app/config/config.h"

#include <nlohmann/json.hpp>

namespace vit::app {

// The model section as a JSON object with the config's key names (for `vit info --json` and the
// config.json of exported models); with `training_fields` also the keys that act only while
// training (dropout rates, MAE's mask ratio), which `vit bench --json` hands its Python reference.
nlohmann::json model_json(const ModelConfig& model, bool training_fields = false);

// The model's name for logs: its preset's, "custom" without one, and "custom (PRESET with dim,
// depth changed)" when explicit fields override the preset's architecture.
std::string describe_model(const ModelConfig& model);

// The architecture's fields for a log line: "image_size 224, patch_size 16, ...".
std::string describe_fields(const ModelConfig& model);

}  // namespace vit::app
