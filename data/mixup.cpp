#include "data/mixup.h"

#include <algorithm>
#include <cmath>

namespace vit::data {

torch::Tensor mix_batch(torch::Tensor& images, const torch::Tensor& labels, int64_t num_classes,
                        const MixupOptions& options, Random& random) {
  double lambda = 1.0;
  if (options.enabled() && random.bernoulli(options.probability)) {
    const bool use_cutmix =
        options.cutmix_alpha > 0.0 && (options.mixup_alpha <= 0.0 || random.bernoulli(options.switch_probability));
    const double alpha = use_cutmix ? options.cutmix_alpha : options.mixup_alpha;
    lambda = random.beta(alpha, alpha);
    const auto flipped = images.flip(0);
    if (use_cutmix) {
      const int64_t height = images.size(2);
      const int64_t width = images.size(3);
      const double cut = std::sqrt(1.0 - lambda);
      const auto cut_h = static_cast<int64_t>(height * cut);
      const auto cut_w = static_cast<int64_t>(width * cut);
      const int64_t center_y = random.integer(0, height);
      const int64_t center_x = random.integer(0, width);
      const int64_t top = std::clamp<int64_t>(center_y - cut_h / 2, 0, height);
      const int64_t bottom = std::clamp<int64_t>(center_y + cut_h / 2, 0, height);
      const int64_t left = std::clamp<int64_t>(center_x - cut_w / 2, 0, width);
      const int64_t right = std::clamp<int64_t>(center_x + cut_w / 2, 0, width);
      images.slice(2, top, bottom).slice(3, left, right).copy_(flipped.slice(2, top, bottom).slice(3, left, right));
      lambda = 1.0 - static_cast<double>((bottom - top) * (right - left)) / static_cast<double>(height * width);
    } else {
      images.mul_(lambda).add_(flipped, 1.0 - lambda);
    }
  }
  const auto one_hot = torch::zeros({labels.size(0), num_classes}).scatter_(1, labels.unsqueeze(1), 1.0);
  return one_hot.mul(lambda).add_(one_hot.flip(0), 1.0 - lambda);
}

}  // namespace vit::data
