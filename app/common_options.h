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
  std::string device;                  // --device: train.device
  int64_t threads = -1;                // --threads: train.threads
  int64_t seed = -1;                   // --seed: train.seed
  bool verbose = false;
};

// --set values followed by --device/--threads/--seed as train.* overrides.
std::vector<std::string> common_overrides(const CommonOptions& options);

void add_common_options(CLI::App& command, CommonOptions& options);
enum class WithoutConfigFile {
  kUseFieldDefaults,  // no file: every field at its built-in default
  kUseDefaultConfig,  // no file: configs/fashion_mnist_vit.yaml as built into the binary
};

// The config file and overrides, loaded and validated; `extra_overrides` go first so that
// explicit --set values still win.
Config load_common_config(const CommonOptions& options, WithoutConfigFile without_file,
                          const std::vector<std::string>& extra_overrides = {});

}  // namespace vit::app
