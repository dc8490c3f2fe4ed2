#pragma once

#include <cstdint>
#include <vector>

namespace vit::models {

// model.arch of the Swin Transformer.
inline constexpr const char* kSwinArch = "swin";

// The hyper-parameters of a Swin Transformer (Liu et al., 2021), as timm's SwinTransformer takes
// them; the defaults are Swin-T at 224 px.
struct SwinOptions {
  int64_t image_size = 224;
  int64_t patch_size = 4;
  int64_t in_chans = 3;
  int64_t num_classes = 1000;                       // 0: no head, forward() returns pooled features
  int64_t embed_dim = 96;                           // the first stage's width; each merge doubles it
  std::vector<int64_t> depths = {2, 2, 6, 2};       // blocks per stage
  std::vector<int64_t> num_heads = {3, 6, 12, 24};  // attention heads per stage
  int64_t window_size = 7;
  double mlp_ratio = 4.0;
  bool qkv_bias = true;
  double drop_rate = 0.0;       // in the MLP and after the attention projection
  double attn_drop_rate = 0.0;  // on the attention weights
  double drop_path_rate = 0.1;  // stochastic depth, rising linearly to this value over all blocks

  int64_t stage_count() const { return static_cast<int64_t>(depths.size()); }
  int64_t total_depth() const;
  int64_t stage_dim(int64_t stage) const { return embed_dim << stage; }
  // The side of stage `stage`'s feature map: the patch grid, halved by each merge before it.
  int64_t stage_resolution(int64_t stage) const { return (image_size / patch_size) >> stage; }
  // A stage whose map fits in one window attends over the whole map, unshifted (as the original
  // code and timm do): its window is the map.
  int64_t stage_window(int64_t stage) const;
  int64_t stage_shift(int64_t stage) const;  // of the odd blocks; 0 when the stage has one window
  int64_t num_features() const { return stage_dim(stage_count() - 1); }
  int64_t mlp_hidden_dim(int64_t stage) const {
    return static_cast<int64_t>(static_cast<double>(stage_dim(stage)) * mlp_ratio);
  }

  // Throws std::invalid_argument naming the first inconsistent field, and for input sizes that
  // the windows and merges do not divide, the sizes of the stage that does not fit.
  void validate() const;
};

}  // namespace vit::models
