#pragma once

#include "models/core/image_model.h"

#include <filesystem>
#include <string>

namespace vit::app {

// Saves the model in eval mode as a TorchScript module mapping a normalized float batch
// [B, C, H, W] (any B) to logits, with its parameters under timm's names and `metadata_json`
// stored as the archive's extra file config.json. The file is written atomically, reloaded,
// and compared with the eager model at batch sizes 1 and 3; a max abs difference above 1e-4
// removes it again and throws std::runtime_error.
void export_torchscript(models::ImageModel& model, const std::filesystem::path& file, const std::string& metadata_json);

}  // namespace vit::app
