#pragma once

#include "models/core/image_model.h"

#include <torch/types.h>
#include <opencv2/core/mat.hpp>

#include <cstdint>
#include <vector>

namespace vit::app {

// What a masked autoencoder makes of normalized images [B, C, H, W], in eval mode: one row per
// image, original | masked | reconstruction, shown in pixels through the per-channel mean and std
// (one each), enlarged to at least 96 pixels a side, with 4-pixel white gaps; BGR, ready for
// write_png. Image i hides the patches that mask noise from (mask_seed, epoch 0, index i) picks,
// as evaluation hides those of dataset sample i.
cv::Mat reconstruction_picture(models::ImageModel& model, const torch::Tensor& images, uint64_t mask_seed,
                               const std::vector<double>& mean, const std::vector<double>& std);

}  // namespace vit::app
