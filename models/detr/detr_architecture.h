#pragma once

#include "models/core/architecture.h"

#include <memory>

namespace vit::models {

// The registry entry of the detector (model.arch: detr), trained by `vit train` on COCO-format data.
std::unique_ptr<Architecture> make_detr_architecture();

}  // namespace vit::models
