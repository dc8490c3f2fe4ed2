#pragma once

#include <torch/types.h>

namespace vit::models {

// The Transformer's 1-D sinusoid over positions 0..num_positions-1, shape [num_positions, dim]:
// PE(pos, 2i) = sin(pos / 10000^(2i/dim)), PE(pos, 2i+1) = cos(pos / 10000^(2i/dim)).
torch::Tensor sinusoid_1d(int64_t num_positions, int64_t dim);

// Fixed 2-D sin-cos over a grid_size x grid_size patch grid, shape [grid_size^2, dim] in row-major
// patch order: the first dim/2 channels encode the column, the last dim/2 the row (MAE's layout),
// each as [sin(p * w_k), cos(p * w_k)] with w_k = 1 / 10000^(k / (dim/4)).
torch::Tensor sincos_2d(int64_t grid_size, int64_t dim);

// The same encoding at any points [N, 2] (column, row) in patch units, fractions included, [N, dim]
// in the points' dtype and differentiable in them (DETR's anchor queries).
torch::Tensor sincos_2d_at(const torch::Tensor& points, int64_t dim);

}  // namespace vit::models
