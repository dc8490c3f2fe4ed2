#pragma once

#include <torch/types.h>

#include <vector>

namespace vit::models {

// Attention rollout (Abnar & Zuidema, 2020): per block, average the heads, add the identity for
// the residual path and renormalize rows, then multiply the blocks together.
// maps: per block [B, H, N, N] -> [B, N, N], each row a distribution summing to 1.
torch::Tensor attention_rollout(const std::vector<torch::Tensor>& maps);

// The rollout row of the class token over the patch tokens, as a [B, grid, grid] map
// normalized to sum to 1 per image.
torch::Tensor class_token_rollout(const std::vector<torch::Tensor>& maps, int64_t grid_size);

}  // namespace vit::models
