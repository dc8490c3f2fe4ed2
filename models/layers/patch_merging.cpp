#include "models/layers/patch_merging.h"

namespace vit::models {

PatchMergingImpl::PatchMergingImpl(int64_t dim)
    : norm_(register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({4 * dim})))),
      reduction_(register_module("reduction", Linear(torch::nn::LinearOptions(4 * dim, 2 * dim).bias(false)))) {}

torch::Tensor PatchMergingImpl::forward(const torch::Tensor& x) {
  const auto height = x.size(1), width = x.size(2), channels = x.size(3);
  // [B, H/2, 2 (row), W/2, 2 (column), C] -> [B, H/2, W/2, column, row, C]: column-major neighbours.
  const auto merged = x.reshape({-1, height / 2, 2, width / 2, 2, channels}).permute({0, 1, 3, 4, 2, 5}).flatten(3);
  // Under autocast the projection gives bf16; the residual stream that follows stays in the input's
  // precision (fp32), as it does after every residual add.
  return reduction_(norm_(merged)).to(x.scalar_type());
}

}  // namespace vit::models
