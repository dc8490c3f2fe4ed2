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
  std::string format = "torchscript";
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
  ExportFormat format = ExportFormat::TorchScript;
  for (const auto& [name, value] : kExportFormatNames) {
    if (name == options.format) format = value;  // CLI checked the name
  }
  export_model(trained.model, format, output, export_metadata(trained));
  const auto* checked =
      format == ExportFormat::TorchScript ? " (checked against the eager model at batch sizes 1 and 3)" : "";
  spdlog::info("exported {} as {}{}{}", output.string(), options.format, options.ema ? " from the EMA weights" : "",
               checked);
  return kExitSuccess;
}

}  // namespace

void add_export_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<ExportOptions>();
  auto* command = app.add_subcommand(
      "export", "Export a checkpoint as TorchScript (torch.jit.load), safetensors, a state_dict (torch.load) or ONNX");
  add_common_options(*command, options->common, kConfigOptions);
  command->add_option("--checkpoint", options->checkpoint, "Checkpoint file or run directory")->required();
  command->add_option("-o,--output", options->output, "The file to write, e.g. model.pt")->required();
  command->add_flag("--ema", options->ema, "Export the EMA weights");
  command->add_option("--format", options->format, "What to write (default: torchscript)")
      ->check(CLI::IsMember(models::names_in(kExportFormatNames)));
  command->footer(
      "torchscript: a module mapping a normalized float batch [B, C, H, W] to logits for any B; the\n"
      "  archive's extra file config.json holds image_size, in_chans, mean, std, class_names, the model.\n"
      "safetensors: the weights under timm's names; __metadata__ holds the same description.\n"
      "pth: the state_dict as torch.save writes it (timm's names; torch.load in Python).\n"
      "onnx: converted from the TorchScript export by scripts/export_onnx.py with python3-torch and\n"
      "  checked with python3-onnx (VIT_PYTHON picks the interpreter; default /usr/bin/python3).\n\n"
      "Examples:\n"
      "  vit export --checkpoint runs/fmnist/best.ckpt --output fmnist.pt\n"
      "  python3 -c \"import torch; m = torch.jit.load('fmnist.pt'); print(m(torch.zeros(1, 1, 28, 28)))\"\n"
      "  vit export --checkpoint runs/fmnist --format safetensors --output fmnist.safetensors\n"
      "  vit import --from timm fmnist.safetensors --output again.ckpt      # the same weights back\n"
      "  vit export --checkpoint runs/fmnist --format onnx --output fmnist.onnx");
  command->callback([options, &exit_code] { exit_code = run_export(*options); });
}

}  // namespace vit::app
