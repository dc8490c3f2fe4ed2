#include "app/commands/config_command.h"

#include "app/commands/common_options.h"
#include "app/config/config.h"
#include "app/config/config_reference.h"
#include "app/errors.h"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <iostream>

namespace vit::app {
namespace {

struct ConfigOptions {
  CommonOptions common;
  bool reference = false;
};

void print_reference() {
  const auto keys = config_reference();
  size_t key_width = 0;
  size_t value_width = 0;
  for (const auto& key : keys) {
    key_width = std::max(key_width, key.key.size());
    value_width = std::max(value_width, key.default_value.size());
  }
  for (const auto& key : keys) {
    std::cout << fmt::format("{:<{}}  {:<{}}  {}", key.key, key_width, key.default_value, value_width, key.help)
              << "\n";
  }
}

int run_config(const ConfigOptions& options) {
  if (options.reference) {
    print_reference();
  } else {
    std::cout << emit_config(load_common_config(options.common, WithoutConfigFile::kUseDefaultConfig));
  }
  return kExitSuccess;
}

}  // namespace

void add_config_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<ConfigOptions>();
  auto* command = app.add_subcommand("config", "Print the configuration a command line resolves to, or every key");
  add_common_options(*command, options->common, kConfigOptions);
  command->add_flag("--reference", options->reference,
                    "List every key with its default and what it does, instead of the resolved configuration");
  command->footer(
      "Examples:\n"
      "  vit config                                   # the built-in default (Fashion-MNIST) configuration\n"
      "  vit config --config configs/cifar10_vit.yaml --set train.epochs=50\n"
      "  vit config --reference");
  command->callback([options, &exit_code] { exit_code = run_config(*options); });
}

}  // namespace vit::app
