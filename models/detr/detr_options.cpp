#include "models/detr/detr_options.h"

#include <stdexcept>
#include <string>

namespace vit::models {

void DetrOptions::validate() const {
  backbone.validate();
  const auto fail = [](const std::string& message) { throw std::invalid_argument(message); };
  if (backbone.num_classes != 0 || backbone.distilled) fail("the DETR backbone has no head and no distillation token");
  if (num_classes < 1) fail("num_classes must be at least 1 (the object classes; no-object comes on top)");
  if (num_queries < 1) fail("num_queries must be at least 1");
  if (encoder_depth < 0 || decoder_depth < 1) fail("encoder_depth must be >= 0 and decoder_depth >= 1");
  if (decoder_heads < 1 || dim() % decoder_heads != 0) {
    fail("dim " + std::to_string(dim()) + " is not divisible by decoder_heads " + std::to_string(decoder_heads));
  }
  if (dim() % 4 != 0) {
    fail("the decoder's 2-D sin-cos key positions need dim divisible by 4, got " + std::to_string(dim()));
  }
}

}  // namespace vit::models
