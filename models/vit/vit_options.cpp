#include "models/vit/vit_options.h"

#include "models/core/option_checks.h"

#include <string>

namespace vit::models {
namespace {

void require_positive(int64_t value, const char* name) {
  require(value > 0, std::string(name) + " must be positive, got " + std::to_string(value));
}

}  // namespace

void VitOptions::validate() const {
  require_positive(image_size, "image_size");
  require_positive(patch_size, "patch_size");
  require_positive(in_chans, "in_chans");
  require_positive(embed_dim, "embed_dim");
  require_positive(depth, "depth");
  require_positive(num_heads, "num_heads");
  require(num_classes >= 0, "num_classes must be >= 0, got " + std::to_string(num_classes));
  require(image_size % patch_size == 0,
          "image_size " + std::to_string(image_size) + " is not divisible by patch_size " + std::to_string(patch_size));
  require(embed_dim % num_heads == 0,
          "embed_dim " + std::to_string(embed_dim) + " is not divisible by num_heads " + std::to_string(num_heads));
  require(mlp_ratio > 0.0 && mlp_hidden_dim() > 0, "mlp_ratio must give a positive MLP width");
  require(pos_embed != PosEmbedKind::SinCos2d || embed_dim % 4 == 0,
          "2-D sin-cos positional embedding needs embed_dim divisible by 4, got " + std::to_string(embed_dim));
  require(pos_embed != PosEmbedKind::Sinusoid1d || embed_dim % 2 == 0,
          "sinusoid positional embedding needs an even embed_dim, got " + std::to_string(embed_dim));
  require_probability(drop_rate, "drop_rate");
  require_probability(attn_drop_rate, "attn_drop_rate");
  require_probability(drop_path_rate, "drop_path_rate");
  require(layer_scale_init >= 0.0, "layer_scale_init must be >= 0");
  require(!distilled || pool == PoolKind::Cls,
          "distilled: the model pools its class and distillation tokens, so pool must be cls");
}

}  // namespace vit::models
