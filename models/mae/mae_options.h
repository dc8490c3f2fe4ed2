#pragma once

#include "models/vit/vit_options.h"

#include <cstdint>

namespace vit::models {

// model.arch of the masked autoencoder.
inline constexpr const char* kMaeArch = "mae";

// MAE (He et al., 2022): the encoder is a ViT without a head (the model section's ViT keys), the
// decoder a narrower stack of its own; both use fixed 2-D sin-cos positions by default.
struct MaeOptions {
  VitOptions encoder = default_encoder();
  int64_t decoder_dim = 512;
  int64_t decoder_depth = 8;
  int64_t decoder_heads = 16;
  double mask_ratio = 0.75;    // the share of each image's patches hidden from the encoder
  bool norm_pix_loss = false;  // targets: each patch's pixels normalized by their own mean and variance

  // The patches the encoder sees: num_patches x (1 - mask_ratio), rounded down as MAE does, at least 1.
  int64_t visible_patches() const;
  int64_t patch_pixels() const { return encoder.patch_size * encoder.patch_size * encoder.in_chans; }
  // Throws std::invalid_argument naming the first inconsistent field.
  void validate() const;

  static VitOptions default_encoder() {
    VitOptions encoder;
    encoder.num_classes = 0;
    encoder.pos_embed = PosEmbedKind::SinCos2d;
    return encoder;
  }
};

}  // namespace vit::models
