#include "app/commands/mae_show_command.h"

#include "app/commands/common_options.h"
#include "app/commands/image_inputs.h"
#include "app/errors.h"
#include "app/io/trained_model.h"
#include "app/viz/plot.h"
#include "app/viz/reconstruction_grid.h"
#include "models/core/registry.h"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <iostream>

namespace vit::app {
namespace {

struct MaeShowOptions {
  CommonOptions common;
  std::string checkpoint;
  std::vector<std::string> inputs;
  std::string output;
  uint64_t seed = 0;
  bool ema = false;
};

int run_mae_show(const MaeShowOptions& options) {
  configure_machine(options.common);
  auto trained = load_trained_model(options.checkpoint, options.common, options.ema, torch::kCPU);
  if (models::masked_image_model(trained.model) == nullptr) {
    throw ConfigError(fmt::format("{}: model.arch {} is not a masked autoencoder; mae-show needs model.arch mae",
                                  options.checkpoint, trained.config.model.options.arch()));
  }
  const auto files = expand_image_inputs(options.inputs);
  if (files.empty()) throw ConfigError("no images found in the given inputs");
  const auto shape = trained.model->shape();
  const data::Transform transform(trained.config.data.val_transforms, static_cast<int>(shape.image_size),
                                  static_cast<int>(shape.in_chans));
  std::vector<torch::Tensor> inputs;
  for (const auto& file : files) inputs.push_back(prepare_image(file, transform).input);
  const auto images = torch::cat(inputs, 0);
  write_png(options.output,
            reconstruction_picture(trained.model, images, options.seed, transform.mean(), transform.std()));
  std::cout << fmt::format("{}: {} images (original | masked | reconstruction per row)\n", options.output,
                           files.size());
  return kExitSuccess;
}

}  // namespace

void add_mae_show_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<MaeShowOptions>();
  auto* command =
      app.add_subcommand("mae-show", "Show a masked autoencoder's reconstructions: original | masked | reconstruction");
  add_common_options(*command, options->common, kConfigOptions | kThreadsOption);
  command->add_option("--checkpoint", options->checkpoint, "Checkpoint file or run directory of model.arch mae")
      ->required();
  command->add_option("inputs", options->inputs, "Image files or folders")->required();
  command->add_option("-o,--output", options->output, "The PNG to write")->required();
  command->add_option("--mask-seed", options->seed, "Seed of the masks (image i's from this seed and i)");
  command->add_flag("--ema", options->ema, "Use the EMA weights");
  command->footer(
      "One row per image, preprocessed as for evaluation: the image, its visible patches (the hidden\n"
      "ones at the dataset mean) and the visible patches with the predicted ones in the holes.\n"
      "--set model.mask_ratio=R hides another share of the patches than training did.\n\n"
      "Examples:\n"
      "  vit mae-show --checkpoint runs/mae shoe.png bag.png --output mae.png\n"
      "  vit mae-show --checkpoint runs/mae/last.ckpt images/ --set model.mask_ratio=0.5 --output half.png");
  command->callback([options, &exit_code] { exit_code = run_mae_show(*options); });
}

}  // namespace vit::app
