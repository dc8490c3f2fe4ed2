#pragma once

#include "data/data_options.h"
#include "data/random.h"

#include <torch/types.h>

namespace vit::data {

// timm's batch-mode Mixup/CutMix: sample i is mixed with sample B-1-i. Modifies `images`
// [B, C, H, W] in place and returns soft targets [B, num_classes] = lambda * onehot(y) +
// (1 - lambda) * onehot(flipped y); for cutmix lambda is the exact unpasted area fraction.
// Label smoothing is left to the loss.
torch::Tensor mix_batch(torch::Tensor& images, const torch::Tensor& labels, int64_t num_classes,
                        const MixupOptions& options, Random& random);

}  // namespace vit::data
