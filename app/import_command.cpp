#include "app/import_command.h"

#include "app/checkpoint.h"
#include "app/config.h"
#include "app/config_names.h"
#include "app/errors.h"
#include "app/weight_import.h"
#include "data/errors.h"
#include "models/presets.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

namespace vit::app {
namespace {

const NameTable<WeightLayout> kLayoutNames = {
    {"timm", WeightLayout::Timm}, {"torchvision", WeightLayout::Torchvision}, {"deit", WeightLayout::Deit}};

struct ImportCommandOptions {
  std::string from;
  std::string weights;
  std::string output;
  std::string preset;
  int64_t heads = 0;
  int64_t image_size = 0;
  int64_t num_classes = -1;
};

int run_import(const ImportCommandOptions& command) {
  ImportOptions options;
  for (const auto& [name, layout] : kLayoutNames) {
    if (name == command.from) options.layout = layout;
  }
  options.preset = command.preset;
  if (command.heads > 0) options.num_heads = command.heads;
  if (command.image_size > 0) options.image_size = command.image_size;
  if (command.num_classes >= 0) options.num_classes = command.num_classes;

  auto weights = read_weight_file(command.weights);  // its errors name the file already
  ImportedModel imported;
  try {
    imported = import_weights(std::move(weights), options);
  } catch (const ConfigError& error) {
    throw ConfigError(command.weights + ": " + error.what());
  } catch (const data::DataError& error) {
    throw data::DataError(command.weights + ": " + error.what());
  }
  for (const auto& note : imported.notes) spdlog::info("{}", note);

  Config config;
  config.model.options = imported.options;
  std::vector<std::string> class_names;
  for (int64_t c = 0; c < imported.options.num_classes; ++c) class_names.push_back(std::to_string(c));
  CheckpointContents contents;
  contents.model = &imported.model;
  contents.config_yaml = emit_config(config);
  contents.class_names = class_names;
  save_checkpoint(command.output, contents);
  const auto& vit = imported.options;
  spdlog::info("imported {} ({} weights): dim {}, depth {}, heads {}, patch {}, image {}, {} classes -> {}",
               command.weights, command.from, vit.embed_dim, vit.depth, vit.num_heads, vit.patch_size, vit.image_size,
               vit.num_classes, command.output);
  spdlog::info("fine-tune with: vit train --config YOUR.yaml --set model.pretrained={}", command.output);
  return kExitSuccess;
}

}  // namespace

void add_import_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<ImportCommandOptions>();
  auto* command = app.add_subcommand("import", "Import pretrained timm / torchvision / DeiT weights as a checkpoint");
  command->add_option("--from", options->from, "Whose names the weights use")
      ->required()
      ->check(CLI::IsMember({"timm", "torchvision", "deit"}));
  command->add_option("weights", options->weights, "A .safetensors file or a torch.save file of a state_dict")
      ->required()
      ->check(CLI::ExistingFile);
  command->add_option("-o,--output", options->output, "The checkpoint to write")->required();
  command->add_option("--model", options->preset, "Check the weights against this preset (default: read the shapes)")
      ->check(CLI::IsMember(models::preset_names()));
  command->add_option("--heads", options->heads, "Attention heads when no --model is given (default: dim / 64)")
      ->check(CLI::Range(int64_t{1}, int64_t{4096}));
  command->add_option("--image-size", options->image_size, "Resample the positional embedding to this image size")
      ->check(CLI::Range(int64_t{1}, int64_t{65536}));
  command->add_option("--num-classes", options->num_classes, "Replace the head with a fresh one of K classes")
      ->check(CLI::Range(int64_t{0}, int64_t{1000000}));
  command->footer(
      "torchvision's names (class_token, conv_proj, encoder.layers.encoder_layer_N...) and DeiT's\n"
      "{\"model\": ...} wrapper are mapped to timm's; every shape is checked and missing or unexpected\n"
      "tensors are named.\n\n"
      "Examples:\n"
      "  vit import --from timm vit_base_patch16_224.safetensors --output vitb.ckpt --model vit_base_patch16_224\n"
      "  vit import --from torchvision vit_b_16.pth --output vitb.ckpt --image-size 384 --num-classes 10\n"
      "  vit train --config configs/cifar10_vit.yaml --set model.pretrained=vitb.ckpt");
  command->callback([options, &exit_code] { exit_code = run_import(*options); });
}

}  // namespace vit::app
