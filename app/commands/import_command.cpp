#include "app/commands/import_command.h"

#include "app/config/config.h"
#include "app/config/config_names.h"
#include "app/config/model_json.h"
#include "app/errors.h"
#include "app/io/checkpoint.h"
#include "app/io/weight_files.h"
#include "models/core/registry.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace vit::app {
namespace {

struct ImportCommandOptions {
  std::string arch;
  std::string from;
  std::string weights;
  std::string output;
  std::string preset;
  int64_t heads = 0;
  int64_t image_size = 0;
  int64_t window_size = 0;
  int64_t num_classes = -1;
};

// The architecture --arch names, the one the --model preset belongs to, or the one the file declares.
const models::Architecture& chosen_architecture(const ImportCommandOptions& command,
                                                const models::ImportRequest& request) {
  if (command.preset.empty()) {
    if (command.arch.empty() && request.declared) return models::architecture(request.declared->arch());
    return models::architecture(command.arch.empty() ? models::architecture_names().front() : command.arch);
  }
  const auto& owner = *models::architecture_of_preset(command.preset);  // CLI checked the name
  if (!command.arch.empty() && command.arch != owner.name()) {
    throw ConfigError(
        fmt::format("--model {} is a {} preset, not --arch {}", command.preset, owner.name(), command.arch));
  }
  return owner;
}

std::vector<std::string> class_names_of(const TextMetadata& metadata, const std::string& file) {
  const auto found = metadata.find("class_names");
  if (found == metadata.end()) return {};
  try {
    return nlohmann::json::parse(found->second).get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& error) {
    throw FileError(file + ": __metadata__ class_names is not a JSON list of names: " + error.what());
  }
}

int run_import(const ImportCommandOptions& command) {
  models::ImportRequest request;
  for (const auto& [name, layout] : models::kWeightLayoutNames) {
    if (name == command.from) request.layout = layout;
  }
  request.preset = command.preset;
  if (command.heads > 0) request.num_heads = command.heads;
  if (command.image_size > 0) request.image_size = command.image_size;
  if (command.window_size > 0) request.window_size = command.window_size;
  if (command.num_classes >= 0) request.num_classes = command.num_classes;

  auto file = read_weight_file(command.weights);  // its errors name the file already
  // vitcpp's own safetensors exports say what model they hold and its classes.
  std::vector<std::string> exported_class_names;
  const auto exported_config = file.metadata.find("config_yaml");
  if (exported_config != file.metadata.end() && command.preset.empty() && command.heads == 0) {
    const auto exported = load_config_text(exported_config->second, command.weights + " (__metadata__)", {});
    request.declared = exported.model.options;
    exported_class_names = class_names_of(file.metadata, command.weights);
  }
  const auto& architecture = chosen_architecture(command, request);
  models::ImportedModel imported;
  try {
    imported = architecture.import_weights(std::move(file.tensors), request);
  } catch (const std::invalid_argument& error) {
    throw ConfigError(command.weights + ": " + error.what());
  } catch (const models::WeightsError& error) {
    throw FileError(command.weights + ": " + error.what());
  }
  for (const auto& note : imported.notes) spdlog::info("{}", note);

  Config config;
  config.model.options = imported.options;
  const auto shape = models::shape_of(imported.options);
  std::vector<std::string> class_names = exported_class_names;
  if (static_cast<int64_t>(class_names.size()) != shape.num_classes) {
    class_names.clear();
    for (int64_t c = 0; c < shape.num_classes; ++c) class_names.push_back(std::to_string(c));
  }
  CheckpointContents contents;
  contents.model = &imported.model;
  contents.config_yaml = emit_config(config);
  contents.class_names = class_names;
  save_checkpoint(command.output, contents);
  spdlog::info("imported {} ({} weights): {} {} -> {}", command.weights, command.from, imported.options.arch(),
               describe_fields(config.model), command.output);
  spdlog::info("fine-tune with: vit train --config YOUR.yaml --set model.pretrained={}", command.output);
  return kExitSuccess;
}

}  // namespace

void add_import_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<ImportCommandOptions>();
  auto* command = app.add_subcommand("import", "Import pretrained timm / torchvision / DeiT weights as a checkpoint");
  command->add_option("--from", options->from, "Whose names the weights use")
      ->required()
      ->check(CLI::IsMember(models::names_in(models::kWeightLayoutNames)));
  command
      ->add_option("--arch", options->arch, "The architecture of the weights (default: the --model preset's, or vit)")
      ->check(CLI::IsMember(models::architecture_names()));
  command->add_option("weights", options->weights, "A .safetensors file or a torch.save file of a state_dict")
      ->required()
      ->check(CLI::ExistingFile);
  command->add_option("-o,--output", options->output, "The checkpoint to write")->required();
  command->add_option("--model", options->preset, "Check the weights against this preset (default: read the shapes)")
      ->check(CLI::IsMember(models::all_preset_names()));
  command->add_option("--heads", options->heads, "Attention heads when no --model is given (default: dim / 64)")
      ->check(CLI::Range(int64_t{1}, int64_t{4096}));
  command
      ->add_option("--image-size", options->image_size,
                   "Adapt to this image size (ViT: resample the positional embedding; swin: default 224)")
      ->check(CLI::Range(int64_t{1}, int64_t{65536}));
  command
      ->add_option("--window-size", options->window_size,
                   "Windowed attention (swin): resample the relative position bias tables to this window")
      ->check(CLI::Range(int64_t{1}, int64_t{1024}));
  command->add_option("--num-classes", options->num_classes, "Replace the head with a fresh one of K classes")
      ->check(CLI::Range(int64_t{0}, int64_t{1000000}));
  command->footer(
      "torchvision's names (class_token, conv_proj, encoder.layers.encoder_layer_N...; Swin's\n"
      "features.N...) and DeiT's {\"model\": ...} wrapper are mapped to timm's (Swin: also the original\n"
      "layout of timm < 0.9); every shape is checked and missing or unexpected tensors are named. A safetensors file "
      "from `vit export --format safetensors` brings its model\n"
      "and class names along (unless --model or --heads is given).\n\n"
      "Examples:\n"
      "  vit import --from timm vit_base_patch16_224.safetensors --output vitb.ckpt --model vit_base_patch16_224\n"
      "  vit import --from torchvision vit_b_16.pth --output vitb.ckpt --image-size 384 --num-classes 10\n"
      "  vit import --arch swin --from torchvision swin_t.pth --output swint.ckpt --num-classes 10\n"
      "  vit train --config configs/cifar10_vit.yaml --set model.pretrained=vitb.ckpt");
  command->callback([options, &exit_code] { exit_code = run_import(*options); });
}

}  // namespace vit::app
