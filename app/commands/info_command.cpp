#include "app/commands/info_command.h"

#include "app/commands/common_options.h"
#include "app/config/model_json.h"
#include "models/core/registry.h"
#include "models/inspect/complexity.h"

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>
#include <memory>

namespace vit::app {
namespace {

struct InfoOptions {
  CommonOptions common;
  std::string preset;
  bool json = false;
};

// 1234567 -> "1,234,567"
std::string grouped(int64_t value) {
  auto digits = std::to_string(value);
  for (int position = static_cast<int>(digits.size()) - 3; position > 0; position -= 3) {
    digits.insert(static_cast<size_t>(position), ",");
  }
  return digits;
}

nlohmann::json to_json(const ModelConfig& model, const models::ModelComplexity& c) {
  nlohmann::json modules = nlohmann::json::array();
  for (const auto& module : c.modules) {
    modules.push_back({{"name", module.name},
                       {"parameters", module.parameters},
                       {"macs", module.macs},
                       {"executed_macs", module.executed_macs}});
  }
  auto info = model_json(model);
  info["model"] = model.preset;
  info["parameters"] = c.parameters;
  info["tokens"] = c.tokens;
  info["gflops"] = c.gflops();
  info["gmacs"] = static_cast<double>(c.macs) / 1e9;
  info["executed_gflops"] = c.executed_gflops();
  info["modules"] = modules;
  return info;
}

void print_table(const ModelConfig& model, const models::ModelComplexity& c) {
  const auto shape = models::shape_of(model.options);
  std::cout << fmt::format("model       {} ({})\n", describe_model(model), model.options.arch())
            << fmt::format("input       {}x{}x{}\n", shape.in_chans, shape.image_size, shape.image_size)
            << fmt::format("options     {}\n", describe_fields(model)) << fmt::format("tokens      {}\n", c.tokens)
            << fmt::format("parameters  {}\n", grouped(c.parameters))
            << fmt::format("forward     {:.3f} GFLOPs per image ({:.3f} GMACs){}\n\n", c.gflops(),
                           static_cast<double>(c.macs) / 1e9,
                           c.executed_macs == c.macs
                               ? std::string()
                               : fmt::format("; vitcpp runs {:.3f} (the last block skips what the head does not read)",
                                             c.executed_gflops()))
            << fmt::format("{:<14} {:>14} {:>16} {:>7}\n", "module", "parameters", "MACs", "MACs %");
  for (const auto& module : c.modules) {
    const double share = c.macs > 0 ? 100.0 * static_cast<double>(module.macs) / static_cast<double>(c.macs) : 0.0;
    std::cout << fmt::format("{:<14} {:>14} {:>16} {:>6.1f}%\n", module.name, grouped(module.parameters),
                             grouped(module.macs), share);
  }
}

int run_info(const InfoOptions& options) {
  std::vector<std::string> preset_override;
  if (!options.preset.empty()) preset_override.push_back("model.preset=" + options.preset);
  const auto config = load_common_config(options.common, WithoutConfigFile::kUseFieldDefaults, preset_override);
  const auto model = models::build_model(config.model.options);
  const auto complexity = models::measure_complexity(*model);
  if (options.json) {
    std::cout << to_json(config.model, complexity).dump(2) << "\n";
  } else {
    print_table(config.model, complexity);
  }
  return 0;
}

}  // namespace

void add_info_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<InfoOptions>();
  auto* command = app.add_subcommand("info", "Show a model's parameters, tokens and forward cost");
  add_common_options(*command, options->common, kConfigOptions);
  command->add_option("-m,--model", options->preset, "Model preset")->check(CLI::IsMember(models::all_preset_names()));
  command->add_flag("--json", options->json, "Print one JSON object instead of a table");
  command->footer(
      "Examples:\n"
      "  vit info --model vit_base_patch16_224\n"
      "  vit info --model vit_tiny_patch16_224 --set model.image_size=384 --json\n"
      "  vit info --config configs/fashion_mnist_vit.yaml");
  command->callback([options, &exit_code] { exit_code = run_info(*options); });
}

}  // namespace vit::app
