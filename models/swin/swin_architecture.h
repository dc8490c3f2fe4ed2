#pragma once

#include "models/core/architecture.h"
#include "models/swin/swin_options.h"

#include <memory>
#include <string>

namespace vit::models {

// The registry entry of the Swin Transformer (model.arch: swin).
std::unique_ptr<Architecture> make_swin_architecture();

// timm's swin_{tiny,small,base}_patch4_window7_224 and small-image variants for 28x28 greyscale
// and 32x32 RGB inputs with 10 classes. Throws std::invalid_argument listing the known names.
SwinOptions swin_preset(const std::string& name);

}  // namespace vit::models
