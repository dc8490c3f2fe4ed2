#pragma once

#include "models/core/architecture.h"

#include <memory>

namespace vit::models {

// The registry entry of the masked autoencoder (model.arch: mae), trained by `vit train` on
// images alone.
std::unique_ptr<Architecture> make_mae_architecture();

}  // namespace vit::models
