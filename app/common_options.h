#pragma once

#include "app/config.h"

#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace vit::app {

// Options every subcommand that reads a configuration shares.
struct CommonOptions {
  std::optional<std::string> config_file;
  std::vector<std::string> overrides;  // --set key.path=value, applied after the file
  bool verbose = false;
};

void add_common_options(CLI::App& command, CommonOptions& options);
// The config file and overrides, loaded and validated; `extra_overrides` go first so that
// explicit --set values still win.
Config load_common_config(const CommonOptions& options, const std::vector<std::string>& extra_overrides = {});

}  // namespace vit::app
