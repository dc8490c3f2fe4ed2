#pragma once

#include <torch/types.h>

#include <cstdint>

namespace vit::models {

// What a masked-image-modelling model (MAE) offers besides ImageModel: it learns from the images
// alone, hiding patches chosen by noise that the caller draws, so that the data pipeline's seeds
// decide the masks as they decide every other random draw.
class MaskedImageModel {
 public:
  virtual ~MaskedImageModel() = default;

  // Uniform [0, 1) draws per image that decide what is hidden: one per patch, the patches with
  // the lowest draws stay visible.
  virtual int64_t mask_noise_size() const = 0;
  // The mean squared error over the hidden patches of normalized images [B, C, H, W], with the
  // patches hidden by `noise` [B, mask_noise_size()].
  virtual torch::Tensor reconstruction_loss(const torch::Tensor& images, const torch::Tensor& noise) = 0;

  // For people, in the images' (normalized) space [B, C, H, W]: the visible patches alone (the
  // hidden ones 0, the dataset's mean) and the visible patches with the predicted ones in the holes.
  struct Reconstruction {
    torch::Tensor masked;
    torch::Tensor reconstructed;
  };
  virtual Reconstruction reconstruct(const torch::Tensor& images, const torch::Tensor& noise) = 0;
};

}  // namespace vit::models
