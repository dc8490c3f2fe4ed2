#pragma once

#include "app/config/config.h"
#include "app/runtime/runtime.h"

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
};

// --set values followed by --device/--threads/--seed as train.* overrides.
std::vector<std::string> common_overrides(const CommonOptions& options);

// Which of the shared options a subcommand offers (-v/--verbose always): only those it acts on.
enum CommonOption : unsigned {
  kConfigOptions = 1U << 0,  // -c/--config, --set
  kDeviceOption = 1U << 1,   // --device
  kThreadsOption = 1U << 2,  // --threads
  kSeedOption = 1U << 3,     // --seed
  kAllCommonOptions = kConfigOptions | kDeviceOption | kThreadsOption | kSeedOption,
};
void add_common_options(CLI::App& command, CommonOptions& options, unsigned which = kAllCommonOptions);
// Where a command that runs a trained model computes: --device and --threads, or this machine's
// defaults (auto, one thread per core), never the training run's settings. Sets the threads.
struct Machine {
  torch::Device device{torch::kCPU};
  ThreadCount threads;
};
Machine configure_machine(const CommonOptions& options);

enum class WithoutConfigFile {
  kUseFieldDefaults,  // no file: every field at its built-in default
  kUseDefaultConfig,  // no file: configs/fashion_mnist_vit.yaml as built into the binary
};

// The config file and overrides, loaded and validated; `extra_overrides` go first so that
// explicit --set values still win.
Config load_common_config(const CommonOptions& options, WithoutConfigFile without_file,
                          const std::vector<std::string>& extra_overrides = {});

}  // namespace vit::app
