#pragma once

#include "models/core/masked_image_model.h"

#include <torch/types.h>
#include <opencv2/core/mat.hpp>

#include <vector>

namespace vit::app {

// One row per image: original | masked | reconstruction, from normalized images [B, C, H, W] and
// what the model made of them, shown in pixels through the per-channel mean and std (one each),
// enlarged to at least 96 pixels a side, with 4-pixel white gaps; BGR, ready for write_png.
cv::Mat reconstruction_grid(const torch::Tensor& originals, const models::MaskedImageModel::Reconstruction& made,
                            const std::vector<double>& mean, const std::vector<double>& std);

}  // namespace vit::app
