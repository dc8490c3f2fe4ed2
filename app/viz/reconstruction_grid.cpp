#include "app/viz/reconstruction_grid.h"

#include "app/viz/attention_overlay.h"
#include "data/mask_noise.h"
#include "models/core/registry.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>

namespace vit::app {
namespace {

constexpr int kMinSide = 96;

// Normalized [C, H, W] -> an enlarged 8-bit BGR image.
cv::Mat to_picture(const torch::Tensor& image, const torch::Tensor& mean, const torch::Tensor& std) {
  const auto pixels = (image.to(torch::kCPU, torch::kFloat32) * std + mean)
                          .clamp(0.0, 1.0)
                          .mul(255.0)
                          .round()
                          .to(torch::kUInt8)
                          .permute({1, 2, 0})
                          .contiguous();
  const int channels = static_cast<int>(pixels.size(2));
  cv::Mat picture(static_cast<int>(pixels.size(0)), static_cast<int>(pixels.size(1)), CV_8UC(channels),
                  pixels.data_ptr<uint8_t>());
  cv::Mat bgr;
  cv::cvtColor(picture, bgr, channels == 1 ? cv::COLOR_GRAY2BGR : cv::COLOR_RGB2BGR);
  const int scale = std::max(1, (kMinSide + bgr.cols - 1) / bgr.cols);
  cv::resize(bgr, bgr, bgr.size() * scale, 0, 0, cv::INTER_NEAREST);
  return bgr;
}

cv::Mat reconstruction_grid(const torch::Tensor& originals, const models::MaskedImageModel::Reconstruction& made,
                            const std::vector<double>& mean, const std::vector<double>& std) {
  const auto channel_mean = torch::tensor(mean, torch::kFloat32).view({-1, 1, 1});
  const auto channel_std = torch::tensor(std, torch::kFloat32).view({-1, 1, 1});
  std::vector<cv::Mat> cells;
  for (int64_t i = 0; i < originals.size(0); ++i) {
    for (const auto& image : {originals[i], made.masked[i], made.reconstructed[i]}) {
      cells.push_back(to_picture(image, channel_mean, channel_std));
    }
  }
  return tile_images(cells, 3);
}

}  // namespace

cv::Mat reconstruction_picture(models::ImageModel& model, const torch::Tensor& images, uint64_t mask_seed,
                               const std::vector<double>& mean, const std::vector<double>& std) {
  auto* masked = models::masked_image_model(model);
  const auto indices = torch::arange(images.size(0), torch::kInt64);
  const auto noise = data::mask_noise(indices, mask_seed, 0, masked->mask_noise_size()).to(images.device());
  const bool was_training = model->is_training();
  model->eval();
  const auto made = masked->reconstruct(images, noise);
  if (was_training) model->train();
  return reconstruction_grid(images, made, mean, std);
}

}  // namespace vit::app
