#pragma once

#include "models/core/architecture.h"

#include <memory>

namespace vit::models {

// The registry entry of the Vision Transformer (model.arch: vit).
std::unique_ptr<Architecture> make_vit_architecture();

}  // namespace vit::models
