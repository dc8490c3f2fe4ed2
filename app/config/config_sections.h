#pragma once

// The readers of each config section; only config.cpp calls them.

#include "app/config/config.h"
#include "app/config/yaml_section.h"
#include "models/core/fields.h"

#include <vector>

namespace vit::app {

ModelConfig read_model(YamlSection section);
data::DataOptions read_data(YamlSection section);
// The data section's keys, declared once for the reader, the emitter and `vit config`.
const std::vector<models::Field<data::DataOptions>>& data_fields();
TrainConfig read_train(YamlSection section);
// The train section's keys, declared once for the reader, the emitter and `vit config`.
const std::vector<models::Field<TrainConfig>>& train_fields();
// Checks between sections (e.g. normalization statistics against the model's channels).
void check_consistency(const Config& config, YamlSection& top);

}  // namespace vit::app
