#pragma once

#include "data/transform_options.h"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace vit::data {

struct MixupOptions {
  double mixup_alpha = 0.0;         // > 0 enables mixup, lambda ~ Beta(alpha, alpha)
  double cutmix_alpha = 0.0;        // > 0 enables cutmix
  double probability = 1.0;         // of mixing a batch at all
  double switch_probability = 0.5;  // of cutmix instead of mixup when both are enabled
  bool enabled() const { return (mixup_alpha > 0.0 || cutmix_alpha > 0.0) && probability > 0.0; }
};

enum class SourceKind { ImageFolder, Csv, Idx, Cifar, Coco };
enum class BadSamplePolicy { Error, Skip };

inline const std::filesystem::path kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

struct SourceOptions {
  SourceKind kind = SourceKind::Idx;
  std::filesystem::path path = kFashionMnistDir;  // folder root, CSV list file, or IDX / CIFAR folder
  std::string split = "train";                    // IDX and CIFAR: "train" or "test"
  std::filesystem::path images;                   // COCO: the image folder
  std::filesystem::path annotations;              // COCO: the annotation JSON file
};

// The `data` section of a configuration.
struct DataOptions {
  SourceOptions train;
  std::optional<SourceOptions> val;  // else val_fraction of train, or no validation
  double val_fraction = 0.0;
  uint64_t split_seed = 0;
  std::vector<std::string> class_names;  // fixes names (and, for CSV names, their order)
  int64_t workers = 0;                   // 0: default_workers()
  int64_t prefetch_batches = 4;
  BadSamplePolicy on_bad_sample = BadSamplePolicy::Error;
  int64_t max_pixels = 100'000'000;
  TransformOptions train_transforms;
  TransformOptions val_transforms;
};

}  // namespace vit::data
