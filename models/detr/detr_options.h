#pragma once

#include "models/vit/vit_options.h"

#include <cstdint>

namespace vit::models {

// model.arch of the detector.
inline constexpr const char* kDetrArch = "detr";

// DETR (Carion et al., 2020) on a ViT backbone: the ViT's patch tokens (the model section's ViT
// keys, without a head) are the image features, optionally refined by extra encoder blocks; a
// decoder of `decoder_depth` blocks turns `num_queries` learned queries into as many predictions,
// each a class out of num_classes + 1 (no object) and a box.
struct DetrOptions {
  VitOptions backbone = default_backbone();
  int64_t num_classes = 91;  // object classes (COCO's ids up to 90, as DETR counts them)
  int64_t num_queries = 100;
  int64_t encoder_depth = 0;  // blocks over the backbone's patch tokens, after its final norm
  int64_t decoder_depth = 6;
  int64_t decoder_heads = 8;
  // Each query owns a learned reference point (cx, cy): its box is predicted as an offset from the
  // point in logit space, and the point's sin-cos position joins the query's learned position, so
  // queries start out attending to and answering for regions of their own (Anchor DETR, DAB-DETR,
  // Conditional DETR). False: the paper's DETR, free queries.
  bool anchor_queries = false;

  int64_t dim() const { return backbone.embed_dim; }
  // Throws std::invalid_argument naming the first inconsistent field.
  void validate() const;

  static VitOptions default_backbone() {
    VitOptions backbone;
    backbone.num_classes = 0;
    backbone.embed_dim = 192;
    backbone.num_heads = 3;
    return backbone;
  }
};

}  // namespace vit::models
