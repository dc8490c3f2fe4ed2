#pragma once

#include "models/core/image_model.h"
#include "models/core/name_table.h"

#include <filesystem>
#include <string>

namespace vit::app {

// What `vit export --format` writes.
enum class ExportFormat { TorchScript, Safetensors, Pth, Onnx };
inline const models::NameTable<ExportFormat> kExportFormatNames = {{"torchscript", ExportFormat::TorchScript},
                                                                   {"safetensors", ExportFormat::Safetensors},
                                                                   {"pth", ExportFormat::Pth},
                                                                   {"onnx", ExportFormat::Onnx}};

// Writes the model (put in eval mode) to `file` in `format`, atomically. `metadata_json` is the
// preprocessing and model description (export_metadata):
// - torchscript: a module mapping a normalized float batch [B, C, H, W] (any B) to logits (a
//   detector: the tuple (class logits [B, Q, C + 1], boxes [B, Q, 4] as (cx, cy, w, h) in [0, 1])), with
//   its parameters under timm's names and the metadata as the archive's extra file config.json;
//   reloaded and compared with the eager model at batch sizes 1 and 3 (above 1e-4 max abs
//   difference it is removed again and std::runtime_error thrown);
// - safetensors: the state_dict under timm's names, the metadata's entries as __metadata__
//   (strings; lists and numbers as JSON text), "format": "pt" as the safetensors library writes;
// - pth: the state_dict as torch.save writes it: Python's torch.load gives {name: tensor};
// - onnx: the TorchScript export converted by scripts/export_onnx.py with Debian's python3-torch
//   (LibTorch has no ONNX exporter); its failure is a FileError.
void export_model(models::ImageModel& model, ExportFormat format, const std::filesystem::path& file,
                  const std::string& metadata_json);

}  // namespace vit::app
