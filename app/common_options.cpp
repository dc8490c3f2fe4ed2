#include "app/common_options.h"

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

namespace vit::app {

void add_common_options(CLI::App& command, CommonOptions& options) {
  command.add_option("-c,--config", options.config_file, "YAML configuration file")->check(CLI::ExistingFile);
  command.add_option("--set", options.overrides, "Override a config value, e.g. --set model.depth=6 (repeatable)")
      ->take_all();
  command.add_flag("-v,--verbose", options.verbose, "Debug logging and error details");
}

Config load_common_config(const CommonOptions& options, WithoutConfigFile without_file,
                          const std::vector<std::string>& extra_overrides) {
  if (options.verbose) spdlog::set_level(spdlog::level::debug);
  std::vector<std::string> overrides = extra_overrides;
  overrides.insert(overrides.end(), options.overrides.begin(), options.overrides.end());
  if (options.config_file) return load_config(std::filesystem::path(*options.config_file), overrides);
  if (without_file == WithoutConfigFile::kUseDefaultConfig) return load_default_config(overrides);
  return load_config(std::nullopt, overrides);
}

}  // namespace vit::app
