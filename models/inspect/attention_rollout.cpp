#include "models/inspect/attention_rollout.h"

namespace vit::models {

torch::Tensor attention_rollout(const std::vector<torch::Tensor>& maps) {
  TORCH_CHECK(!maps.empty(), "attention_rollout needs at least one attention map");
  torch::Tensor rollout;
  for (const auto& map : maps) {
    const auto tokens = map.size(-1);
    auto mixed = map.to(torch::kFloat32).mean(1) + torch::eye(tokens, map.options().dtype(torch::kFloat32));
    mixed = mixed / mixed.sum(-1, /*keepdim=*/true);
    rollout = rollout.defined() ? torch::matmul(mixed, rollout) : mixed;
  }
  return rollout;
}

torch::Tensor token_rollout(const std::vector<torch::Tensor>& maps, int64_t grid_size, int64_t token,
                            int64_t prefix_tokens) {
  const auto patches = attention_rollout(maps).select(1, token).slice(1, prefix_tokens);
  return (patches / patches.sum(-1, /*keepdim=*/true)).view({-1, grid_size, grid_size});
}

}  // namespace vit::models
