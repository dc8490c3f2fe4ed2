#include "app/train/device_input.h"

namespace vit::app {

DeviceInput::DeviceInput(const std::vector<double>& mean, const std::vector<double>& std, torch::Device device)
    : device_(device) {
  const auto channels = static_cast<int64_t>(mean.size());
  auto scale = torch::empty({1, channels, 1, 1}, torch::kFloat64);
  auto offset = torch::empty({1, channels, 1, 1}, torch::kFloat64);
  for (int64_t c = 0; c < channels; ++c) {
    scale[0][c] = 1.0 / (255.0 * std[static_cast<size_t>(c)]);
    offset[0][c] = mean[static_cast<size_t>(c)] / std[static_cast<size_t>(c)];
  }
  scale_ = scale.to(torch::kFloat32).to(device);
  offset_ = offset.to(torch::kFloat32).to(device);
}

torch::Tensor DeviceInput::operator()(const torch::Tensor& images) const {
  const auto moved = images.to(device_, /*non_blocking=*/true);
  if (images.scalar_type() != torch::kUInt8) return moved;
  return torch::addcmul(-offset_, moved.to(torch::kFloat32), scale_);
}

bool uint8_batches(const Config& config, bool training, torch::Device device) {
  if (!device.is_cuda()) return false;  // on the CPU the loader threads normalize for free
  const auto& transforms = training ? config.data.train_transforms : config.data.val_transforms;
  return !(training && config.train.mixup.enabled()) && transforms.random_erasing.probability <= 0.0;
}

}  // namespace vit::app
