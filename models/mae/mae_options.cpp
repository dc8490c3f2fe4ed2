#include "models/mae/mae_options.h"

#include "models/core/option_checks.h"

#include <algorithm>
#include <string>

namespace vit::models {

int64_t MaeOptions::visible_patches() const {
  const auto kept = static_cast<int64_t>(static_cast<double>(encoder.num_patches()) * (1.0 - mask_ratio));
  return std::max<int64_t>(1, kept);
}

void MaeOptions::validate() const {
  encoder.validate();
  require(encoder.num_classes == 0 && !encoder.distilled, "the MAE encoder has no head and no distillation token");
  require(decoder_dim > 0 && decoder_depth > 0 && decoder_heads > 0,
          "decoder_dim, decoder_depth and decoder_heads must be positive");
  require(decoder_dim % decoder_heads == 0, "decoder_dim " + std::to_string(decoder_dim) +
                                                " is not divisible by decoder_heads " + std::to_string(decoder_heads));
  require(decoder_dim % 4 == 0,
          "the decoder's 2-D sin-cos positions need decoder_dim divisible by 4, got " + std::to_string(decoder_dim));
  require(mask_ratio > 0.0 && mask_ratio < 1.0, "mask_ratio must be in (0, 1), got " + std::to_string(mask_ratio));
  require(visible_patches() < encoder.num_patches(), "mask_ratio " + std::to_string(mask_ratio) +
                                                         " hides none of the " + std::to_string(encoder.num_patches()) +
                                                         " patches");
}

}  // namespace vit::models
