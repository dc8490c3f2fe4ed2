#pragma once

#include "models/core/architecture.h"
#include "models/vit/vit_options.h"

#include <functional>
#include <memory>
#include <vector>

namespace vit::models {

// The registry entry of the Vision Transformer (model.arch: vit).
std::unique_ptr<Architecture> make_vit_architecture();

// The ViT's config keys over the VitOptions that `access` reaches inside a ModelOptions, so that
// an architecture built around a ViT encoder (MAE) declares the same keys; without `classifier`,
// those of the head (num_classes, pool, distilled) are left out.
using VitAccess = std::function<VitOptions&(ModelOptions&)>;
std::vector<OptionField> vit_option_fields(const VitAccess& access, bool classifier);

}  // namespace vit::models
