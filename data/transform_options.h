#pragma once

#include <cstdint>
#include <vector>

namespace vit::data {

struct RandomResizedCropOptions {
  bool enabled = false;
  double scale_min = 0.08;  // of the image area
  double scale_max = 1.0;
  double ratio_min = 3.0 / 4.0;  // width / height
  double ratio_max = 4.0 / 3.0;
};

struct ColorJitterOptions {
  double brightness = 0.0;
  double contrast = 0.0;
  double saturation = 0.0;
  double hue = 0.0;  // in [0, 0.5]
  bool enabled() const { return brightness > 0 || contrast > 0 || saturation > 0 || hue > 0; }
};

struct RandAugmentOptions {
  int64_t num_ops = 0;  // 0 disables RandAugment
  int64_t magnitude = 9;
  int64_t num_magnitude_bins = 31;
};

struct RandomErasingOptions {
  double probability = 0.0;
  double scale_min = 0.02;
  double scale_max = 0.33;
  double ratio_min = 0.3;
  double ratio_max = 3.3;
};

// One split's per-sample pipeline, applied in this order (torchvision semantics):
// resize -> center crop -> random resized crop -> random crop -> flip -> colour jitter ->
// RandAugment -> (resize to the model's size if still different) -> normalize -> random erasing.
// Crops produce the model's image size.
struct TransformOptions {
  int64_t resize = 0;     // shorter side to this many pixels; 0: no resize
  double crop_pct = 0.0;  // (0, 1]: resize shorter side to size / crop_pct, then center crop (timm eval)
  bool center_crop = false;
  RandomResizedCropOptions random_resized_crop;
  int64_t random_crop_padding = -1;  // >= 0: zero-pad by this much, then take a random crop
  double hflip = 0.0;                // probability
  ColorJitterOptions color_jitter;
  RandAugmentOptions rand_augment;
  RandomErasingOptions random_erasing;
  std::vector<double> mean;  // per channel, of [0, 1] pixel values; one value applies to every channel
  std::vector<double> std;
};

}  // namespace vit::data
