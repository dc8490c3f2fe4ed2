#include "models/layers/pos_embed.h"

#include <cmath>

namespace vit::models {
namespace {

// [positions, 2 * frequencies.size(0)] as [sin(p w) | cos(p w)] blocks.
torch::Tensor sin_cos_blocks(const torch::Tensor& positions, const torch::Tensor& frequencies) {
  const auto angles = torch::outer(positions, frequencies);
  return torch::cat({angles.sin(), angles.cos()}, 1);
}

torch::Tensor inverse_frequencies(int64_t count, double denominator) {
  const auto options = torch::TensorOptions().dtype(torch::kFloat64);
  return torch::pow(10000.0, -torch::arange(count, options) / denominator);
}

}  // namespace

torch::Tensor sinusoid_1d(int64_t num_positions, int64_t dim) {
  TORCH_CHECK(dim % 2 == 0, "sinusoid_1d needs an even dim, got ", dim);
  const auto options = torch::TensorOptions().dtype(torch::kFloat64);
  // w_i = 1 / 10000^(2i/dim); interleave so that channel 2i holds sin and 2i+1 holds cos.
  const auto angles = torch::outer(torch::arange(num_positions, options), inverse_frequencies(dim / 2, dim / 2.0));
  return torch::stack({angles.sin(), angles.cos()}, 2).flatten(1).to(torch::kFloat32);
}

torch::Tensor sincos_2d_at(const torch::Tensor& points, int64_t dim) {
  TORCH_CHECK(dim % 4 == 0, "sincos_2d needs dim divisible by 4, got ", dim);
  const auto frequencies = inverse_frequencies(dim / 4, dim / 4.0).to(points.scalar_type());
  return torch::cat(
      {sin_cos_blocks(points.select(1, 0), frequencies), sin_cos_blocks(points.select(1, 1), frequencies)}, 1);
}

torch::Tensor sincos_2d(int64_t grid_size, int64_t dim) {
  const auto coordinates = torch::arange(grid_size, torch::TensorOptions().dtype(torch::kFloat64));
  const auto rows = coordinates.repeat_interleave(grid_size);  // row index of each patch
  const auto cols = coordinates.repeat({grid_size});           // column index of each patch
  return sincos_2d_at(torch::stack({cols, rows}, 1), dim).to(torch::kFloat32);
}

}  // namespace vit::models
