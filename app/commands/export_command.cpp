#include "app/commands/export_command.h"

#include "app/commands/common_options.h"
#include "app/errors.h"
#include "app/io/checkpoint.h"
#include "app/io/exporter.h"
#include "app/io/file_util.h"
#include "app/io/trained_model.h"

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

namespace vit::app {
namespace {

struct ExportOptions {
  CommonOptions common;
  std::string checkpoint;
  std::string output;
  bool ema = false;
};

int run_export(const ExportOptions& options) {
  const std::filesystem::path output = options.output;
  const auto folder = output.parent_path().empty() ? std::filesystem::path(".") : output.parent_path();
  std::error_code error;
  if (!std::filesystem::is_directory(folder, error)) {
    throw ConfigError("--output " + output.string() + ": folder " + folder.string() + " does not exist");
  }
  refuse_overwriting_input(output, resolve_checkpoint(options.checkpoint), "--output");
  // Traced on the CPU: the file then loads on any device.
  auto trained = load_trained_model(options.checkpoint, options.common, options.ema, torch::Device(torch::kCPU));
  export_torchscript(trained.model, output, export_metadata(trained));
  spdlog::info("exported {}{} (checked against the eager model at batch sizes 1 and 3)", output.string(),
               options.ema ? " from the EMA weights" : "");
  return kExitSuccess;
}

}  // namespace

void add_export_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<ExportOptions>();
  auto* command = app.add_subcommand("export", "Export a checkpoint as TorchScript (loads with torch.jit.load)");
  add_common_options(*command, options->common, kConfigOptions);
  command->add_option("--checkpoint", options->checkpoint, "Checkpoint file or run directory")->required();
  command->add_option("-o,--output", options->output, "The TorchScript file to write, e.g. model.pt")->required();
  command->add_flag("--ema", options->ema, "Export the EMA weights");
  command->footer(
      "The module maps a normalized float batch [B, C, H, W] to logits for any B; the archive's\n"
      "extra file config.json holds image_size, in_chans, mean, std, class_names and the model.\n\n"
      "Examples:\n"
      "  vit export --checkpoint runs/fmnist/best.ckpt --output fmnist.pt\n"
      "  python3 -c \"import torch; m = torch.jit.load('fmnist.pt'); print(m(torch.zeros(1, 1, 28, 28)))\"");
  command->callback([options, &exit_code] { exit_code = run_export(*options); });
}

}  // namespace vit::app
