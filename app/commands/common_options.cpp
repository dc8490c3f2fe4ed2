#include "app/commands/common_options.h"

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

namespace vit::app {

void add_common_options(CLI::App& command, CommonOptions& options, unsigned which) {
  if ((which & kConfigOptions) != 0) {
    command.add_option("-c,--config", options.config_file, "YAML configuration file")->check(CLI::ExistingFile);
    command.add_option("--set", options.overrides, "Override a config value, e.g. --set model.depth=6 (repeatable)")
        ->take_all();
  }
  if ((which & kDeviceOption) != 0) {
    command.add_option("--device", options.device, "auto, cpu, cuda or cuda:N (train.device)");
  }
  if ((which & kThreadsOption) != 0) {
    command.add_option("--threads", options.threads, "LibTorch intra-op threads, 0 = one per core (train.threads)")
        ->check(CLI::Range(0, 1024));
  }
  if ((which & kSeedOption) != 0) {
    command.add_option("--seed", options.seed, "Random seed (train.seed)")->check(CLI::NonNegativeNumber);
  }
  command.add_flag_callback(
      "-v,--verbose", [] { spdlog::set_level(spdlog::level::debug); },
      "Debug logging, and LibTorch's stack trace with its errors");
}

std::vector<std::string> common_overrides(const CommonOptions& options) {
  std::vector<std::string> overrides = options.overrides;
  if (!options.device.empty()) overrides.push_back("train.device=" + options.device);
  if (options.threads >= 0) overrides.push_back("train.threads=" + std::to_string(options.threads));
  if (options.seed >= 0) overrides.push_back("train.seed=" + std::to_string(options.seed));
  return overrides;
}

Machine configure_machine(const CommonOptions& options) {
  const TrainConfig machine_defaults;
  Machine machine;
  machine.threads = configure_threads(options.threads >= 0 ? options.threads : machine_defaults.threads);
  machine.device = select_device(options.device.empty() ? machine_defaults.device : options.device);
  return machine;
}

Config load_common_config(const CommonOptions& options, WithoutConfigFile without_file,
                          const std::vector<std::string>& extra_overrides) {
  std::vector<std::string> overrides = extra_overrides;
  const auto given = common_overrides(options);
  overrides.insert(overrides.end(), given.begin(), given.end());
  if (options.config_file) return load_config(std::filesystem::path(*options.config_file), overrides);
  if (without_file == WithoutConfigFile::kUseDefaultConfig) return load_default_config(overrides);
  return load_config(std::nullopt, overrides);
}

}  // namespace vit::app
