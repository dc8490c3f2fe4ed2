#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace vit::models {

// The minimum-cost assignment of a rows x cols cost matrix (row-major): min(rows, cols) pairs, each
// row and column used at most once, with the least total cost. Rows ascending, as
// scipy.optimize.linear_sum_assignment returns them. The Hungarian method with potentials and
// shortest augmenting paths (Kuhn, Munkres; Jonker-Volgenant's O(n^2 m) form). Throws
// std::invalid_argument for a non-finite cost.
struct Assignment {
  std::vector<int64_t> rows;
  std::vector<int64_t> cols;
};
Assignment linear_sum_assignment(const std::vector<double>& cost, int64_t rows, int64_t cols);

}  // namespace vit::models
