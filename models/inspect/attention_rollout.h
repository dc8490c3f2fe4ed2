#pragma once

#include <torch/types.h>

#include <vector>

namespace vit::models {

// Attention rollout (Abnar & Zuidema, 2020): per block, average the heads, add the identity for
// the residual path and renormalize rows, then multiply the blocks together.
// maps: per block [B, H, N, N] -> [B, N, N], each row a distribution summing to 1.
torch::Tensor attention_rollout(const std::vector<torch::Tensor>& maps);

// The rollout row of special token `token` (0: class, 1: distillation) over the patch tokens that
// follow the `prefix_tokens` special ones, as a [B, grid, grid] map summing to 1 per image.
torch::Tensor token_rollout(const std::vector<torch::Tensor>& maps, int64_t grid_size, int64_t token,
                            int64_t prefix_tokens);

}  // namespace vit::models
