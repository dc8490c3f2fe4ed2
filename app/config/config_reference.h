#pragma once

#include <string>
#include <vector>

namespace vit::app {

// One configuration key as `vit config --reference` lists it.
struct ConfigKey {
  std::string key;            // dotted: "train.mixup.prob"
  std::string default_value;  // as config.yaml spells it ("" for an optional key that is unset)
  std::string help;
};

// Every key a config file may hold: the model section of every architecture (from its declared
// fields), the data section, the train section (from its declared fields) and `output`.
std::vector<ConfigKey> config_reference();

}  // namespace vit::app
