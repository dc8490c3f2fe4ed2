#pragma once

#include "models/vit/vit_options.h"

#include <string>
#include <vector>

namespace vit::models {

// timm's ViT variants at 224 px with 1000 classes (vit_{tiny,small,base,large}_patch16_224,
// vit_base_patch32_224), DeiT's (deit_{tiny,small,base}[_distilled]_patch16_224) and small-image variants with 4-pixel
// patches for 28x28 greyscale (MNIST-like) and 32x32 RGB (CIFAR-like) data with 10 classes. Throws
// std::invalid_argument listing the known names for an unknown one.
VitOptions preset(const std::string& name);
std::vector<std::string> preset_names();

}  // namespace vit::models
