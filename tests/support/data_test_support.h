#pragma once

#include "data/tensor_dataset.h"

#include <opencv2/core/mat.hpp>

#include <filesystem>
#include <string>

namespace vit::testing {

// A w x h RGB image whose pixel (x, y) is (x * 7 + seed, y * 11 + seed, 100) mod 256.
cv::Mat pattern_image(int width, int height, int seed = 0);
// Writes pattern images as root/<class>/<i>.<extension>, `per_class` per class.
void write_image_folder(const std::filesystem::path& root, const std::vector<std::string>& classes, int per_class,
                        const std::string& extension = ".png", int size = 12);
// N grey 8x8 images whose every pixel equals the image index (mod 256); label = index % classes.
data::TensorDataset counting_dataset(int64_t count, int64_t classes);

}  // namespace vit::testing
