#pragma once

// The readers of each config section; only config.cpp calls them.

#include "app/config.h"
#include "app/yaml_section.h"

namespace vit::app {

ModelConfig read_model(YamlSection section);
data::DataOptions read_data(YamlSection section);
TrainConfig read_train(YamlSection section);
// Checks between sections (e.g. normalization statistics against the model's channels).
void check_consistency(const Config& config, YamlSection& top);

}  // namespace vit::app
