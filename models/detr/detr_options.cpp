#include "models/detr/detr_options.h"

#include "models/core/option_checks.h"

#include <string>

namespace vit::models {

void DetrOptions::validate() const {
  backbone.validate();
  require(backbone.num_classes == 0 && !backbone.distilled, "the DETR backbone has no head and no distillation token");
  require(num_classes >= 1, "num_classes must be at least 1 (the object classes; no-object comes on top)");
  require(num_queries >= 1, "num_queries must be at least 1");
  require(encoder_depth >= 0 && decoder_depth >= 1, "encoder_depth must be >= 0 and decoder_depth >= 1");
  require(decoder_heads >= 1 && dim() % decoder_heads == 0,
          "dim " + std::to_string(dim()) + " is not divisible by decoder_heads " + std::to_string(decoder_heads));
  require(dim() % 4 == 0,
          "the decoder's 2-D sin-cos key positions need dim divisible by 4, got " + std::to_string(dim()));
}

}  // namespace vit::models
