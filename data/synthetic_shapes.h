#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace vit::data {

// `vit data synth-detection`: a small, real detection task for a CPU. Each image has a textured
// background (a colour gradient, stripes at a random angle and pixel noise) and 1..max_objects
// filled shapes of random class, size and colour, kept apart enough that each stays visible (no
// pair overlapping by more than 20 % IoU). Everything follows from the seed.
struct SyntheticShapesOptions {
  int64_t image_size = 64;
  int64_t train_images = 6000;
  int64_t val_images = 500;
  int64_t max_objects = 4;
  int64_t min_object_size = 10;  // pixels, the shape's bounding box side
  int64_t max_object_size = 28;
  uint64_t seed = 0;
};

// The classes, in category id order (ids 1, 2, ...).
const std::vector<std::string>& synthetic_shape_names();

// Writes DIR/{train,val}/NNNNNN.png and DIR/{train,val}.json (COCO format: images, annotations with
// [x, y, w, h] boxes, categories). Throws DataError naming what cannot be written.
void write_synthetic_shapes(const std::filesystem::path& dir, const SyntheticShapesOptions& options);

}  // namespace vit::data
