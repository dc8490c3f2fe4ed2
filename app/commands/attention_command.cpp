#include "app/commands/attention_command.h"

#include "app/commands/common_options.h"
#include "app/commands/image_inputs.h"
#include "app/errors.h"
#include "app/io/trained_model.h"
#include "app/viz/attention_overlay.h"
#include "app/viz/plot.h"
#include "models/inspect/attention_rollout.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <cmath>
#include <iostream>

namespace vit::app {
namespace {

namespace fs = std::filesystem;

struct AttentionOptions {
  CommonOptions common;
  std::string checkpoint;
  std::vector<std::string> inputs;
  std::string output;
  int64_t layer = -1;  // -1: the last block
  int64_t head = -1;   // -1: every head
  bool ema = false;
};

int run_attention(const AttentionOptions& options) {
  configure_machine(options.common);  // (its --device is not offered: attention maps are drawn on the CPU)
  auto trained = load_trained_model(options.checkpoint, options.common, options.ema, torch::kCPU);
  const auto attention = trained.model->attention_layout();
  if (attention.grid == 0) {
    throw ConfigError(fmt::format("{}: model.arch {} has no class-token attention to show", options.checkpoint,
                                  trained.config.model.options.arch()));
  }
  const int64_t layer = options.layer < 0 ? attention.blocks - 1 : options.layer;
  if (layer >= attention.blocks) {
    throw ConfigError(fmt::format("--layer {}: the model has blocks 0..{}", options.layer, attention.blocks - 1));
  }
  if (options.head >= attention.heads) {
    throw ConfigError(fmt::format("--head {}: the model has heads 0..{}", options.head, attention.heads - 1));
  }
  const auto shape = trained.model->shape();
  const auto files = expand_image_inputs(options.inputs);
  if (files.empty()) throw ConfigError("no images found in the given inputs");
  fs::create_directories(options.output);

  const data::Transform transform(trained.config.data.val_transforms, static_cast<int>(shape.image_size),
                                  static_cast<int>(shape.in_chans));
  const int64_t grid = attention.grid;
  torch::NoGradGuard no_grad;
  const auto names = unique_names(files);
  for (size_t i = 0; i < files.size(); ++i) {
    const auto& file = files[i];
    const auto image = prepare_image(file, transform);
    auto maps = trained.model->attention_maps(image.input);  // per block [1, H, P + N, P + N]
    maps.resize(static_cast<size_t>(layer + 1));
    std::vector<std::string> written;
    // The class token's maps, then (DeiT) the distillation token's under "_dist" names.
    for (int64_t token = 0; token < attention.prefix_tokens; ++token) {
      const auto stem = names[i] + (token == 0 ? "" : "_dist");
      const auto rollout_file = fs::path(options.output) / (stem + "_rollout.png");
      const auto rollout = models::token_rollout(maps, grid, token, attention.prefix_tokens)[0];
      write_png(rollout_file, heatmap_overlay(rollout, image.shown));

      // The token's attention to each patch, per head, in the chosen block.
      const auto to_patches =
          maps.back()[0].select(1, token).narrow(1, attention.prefix_tokens, grid * grid).reshape({-1, grid, grid});
      std::vector<cv::Mat> panels;
      for (int64_t h = 0; h < attention.heads; ++h) {
        if (options.head < 0 || options.head == h) panels.push_back(heatmap_overlay(to_patches[h], image.shown));
      }
      const auto columns = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(panels.size()))));
      const auto heads_file =
          fs::path(options.output) / (stem + (options.head < 0 ? "_heads" : fmt::format("_head{}", options.head)) +
                                      fmt::format("_block{}.png", layer));
      write_png(heads_file, tile_images(panels, columns));
      written.push_back(rollout_file.string());
      written.push_back(heads_file.string());
    }
    std::cout << file.string() << ": " << fmt::format("{}", fmt::join(written, ", ")) << "\n";
  }
  return kExitSuccess;
}

}  // namespace

void add_attention_command(CLI::App& app, int& exit_code) {
  auto options = std::make_shared<AttentionOptions>();
  auto* command = app.add_subcommand("attention", "Show where a trained model looks: attention rollout and heads");
  add_common_options(*command, options->common, kConfigOptions | kThreadsOption);
  command->add_option("--checkpoint", options->checkpoint, "Checkpoint file or run directory")->required();
  command->add_option("inputs", options->inputs, "Image files or folders")->required();
  command->add_option("-o,--output", options->output, "Folder for the PNGs")->required();
  command
      ->add_option("--layer", options->layer, "Block whose heads are shown and where the rollout stops (default: last)")
      ->check(CLI::Range(int64_t{0}, int64_t{1023}));
  command->add_option("--head", options->head, "Show only this head (default: all, tiled)")
      ->check(CLI::Range(int64_t{0}, int64_t{1023}));
  command->add_flag("--ema", options->ema, "Use the EMA weights");
  command->footer(
      "Per image: NAME_rollout.png, the attention rollout (Abnar & Zuidema) of the class token over the\n"
      "patches through blocks 0..layer, and NAME_heads_blockL.png, the class token's attention to each\n"
      "patch per head in block L, each blended over the preprocessed image. A distilled model (DeiT)\n"
      "also gets NAME_dist_rollout.png and NAME_dist_heads_blockL.png for its distillation token.\n\n"
      "Examples:\n"
      "  vit attention --checkpoint runs/fmnist/best.ckpt shoe.png --output attention/\n"
      "  vit attention --checkpoint runs/fmnist --layer 2 --head 0 images/ --output attention/");
  command->callback([options, &exit_code] { exit_code = run_attention(*options); });
}

}  // namespace vit::app
