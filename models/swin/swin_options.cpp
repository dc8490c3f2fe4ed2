#include "models/swin/swin_options.h"

#include "models/core/option_checks.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <numeric>

namespace vit::models {
int64_t SwinOptions::total_depth() const { return std::accumulate(depths.begin(), depths.end(), int64_t{0}); }

int64_t SwinOptions::stage_window(int64_t stage) const { return std::min(window_size, stage_resolution(stage)); }

int64_t SwinOptions::stage_shift(int64_t stage) const {
  return stage_resolution(stage) <= window_size ? 0 : window_size / 2;
}

void SwinOptions::validate() const {
  const std::pair<int64_t, const char*> sizes[] = {{image_size, "image_size"},
                                                   {patch_size, "patch_size"},
                                                   {in_chans, "in_chans"},
                                                   {embed_dim, "dim"},
                                                   {window_size, "window_size"}};
  for (const auto& [value, name] : sizes) {
    require(value > 0, fmt::format("{} must be positive, got {}", name, value));
  }
  require(num_classes >= 0, fmt::format("num_classes must be >= 0, got {}", num_classes));
  require(!depths.empty() && depths.size() <= 16,
          fmt::format("depths must list 1 to 16 stages, got {}", depths.size()));
  require(std::all_of(depths.begin(), depths.end(), [](int64_t d) { return d > 0; }),
          fmt::format("depths must be positive, got [{}]", fmt::join(depths, ", ")));
  require(
      num_heads.size() == depths.size(),
      fmt::format("heads lists {} stages, depths {}: give one head count per stage", num_heads.size(), depths.size()));
  for (int64_t stage = 0; stage < stage_count(); ++stage) {
    const auto heads = num_heads[static_cast<size_t>(stage)];
    require(heads > 0 && stage_dim(stage) % heads == 0,
            fmt::format("stage {} is {} wide (dim {} x 2^{}), not divisible by its {} heads", stage, stage_dim(stage),
                        embed_dim, stage, heads));
  }
  require(mlp_ratio > 0.0 && mlp_hidden_dim(0) > 0, "mlp_ratio must give a positive MLP width");
  require_probability(drop_rate, "dropout");
  require_probability(attn_drop_rate, "attn_dropout");
  require_probability(drop_path_rate, "drop_path");

  // The sizes the reference code pads or crops silently (and users ask about): refused here.
  require(image_size % patch_size == 0, fmt::format("image_size {} is not divisible by patch_size {}: Swin needs "
                                                    "whole patches",
                                                    image_size, patch_size));
  const auto fitting_size = (patch_size * window_size) << (stage_count() - 1);
  int64_t side = image_size / patch_size;
  for (int64_t stage = 0; stage < stage_count(); ++stage) {
    if (stage > 0) {
      require(
          side % 2 == 0,
          fmt::format("image_size {} / patch_size {} gives stage {} a {}x{} map, which patch merging cannot halve "
                      "for stage {}; use an image_size of patch_size x window_size x 2^{} (e.g. {}) or fewer stages",
                      image_size, patch_size, stage - 1, side, side, stage, stage_count() - 1, fitting_size));
      side /= 2;
    }
    require(side <= window_size || side % window_size == 0,
            fmt::format("image_size {} / patch_size {} gives stage {} a {}x{} map, not divisible by window_size {}; "
                        "use an image_size of patch_size x window_size x 2^{} (e.g. {}) or another window_size",
                        image_size, patch_size, stage, side, side, window_size, stage_count() - 1, fitting_size));
  }
}

}  // namespace vit::models
