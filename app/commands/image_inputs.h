#pragma once

#include "data/transforms.h"

#include <torch/types.h>
#include <opencv2/core/mat.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace vit::app {

// Image files named on the command line, folders expanded (recursively, sorted) to the images
// inside them.
std::vector<std::filesystem::path> expand_image_inputs(const std::vector<std::string>& inputs);

// A distinct name per file for what is written about it: its stem; where stems repeat
// (photos/a/1.png, photos/b/1.png), its folder's name and the stem ("a_1", "b_1"); where even that
// repeats, a counter after it ("a_1_2").
std::vector<std::string> unique_names(const std::vector<std::filesystem::path>& files);

// One image as the model sees it, and as a person would: the normalized [1, C, S, S] input and
// the 8-bit image after the same (deterministic, evaluation) preprocessing.
struct PreparedImage {
  torch::Tensor input;
  cv::Mat shown;
};
PreparedImage prepare_image(const std::filesystem::path& file, const data::Transform& transform);

}  // namespace vit::app
