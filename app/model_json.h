#pragma once

#include "app/config.h"

#include <nlohmann/json.hpp>

namespace vit::app {

// The model section as a JSON object with the config's key names (for `vit info --json` and the
// config.json of exported models).
nlohmann::json model_json(const ModelConfig& model);

}  // namespace vit::app
