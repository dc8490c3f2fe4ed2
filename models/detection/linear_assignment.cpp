#include "models/detection/linear_assignment.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace vit::models {
namespace {

// Assigns every row of a rows <= cols matrix; column_of[r] is row r's column.
std::vector<int64_t> assign_rows(const std::vector<double>& cost, int64_t rows, int64_t cols, bool transposed) {
  const auto at = [&](int64_t r, int64_t c) {
    return transposed ? cost[static_cast<size_t>(c * rows + r)] : cost[static_cast<size_t>(r * cols + c)];
  };
  constexpr double kInfinity = std::numeric_limits<double>::infinity();
  // Index 0 of the columns is a virtual column where each new row starts its augmenting path.
  std::vector<double> row_potential(static_cast<size_t>(rows) + 1, 0.0);
  std::vector<double> col_potential(static_cast<size_t>(cols) + 1, 0.0);
  std::vector<int64_t> row_of_col(static_cast<size_t>(cols) + 1, 0);  // 1-based row, 0: free
  std::vector<int64_t> previous_col(static_cast<size_t>(cols) + 1, 0);
  for (int64_t row = 1; row <= rows; ++row) {
    row_of_col[0] = row;
    int64_t col = 0;
    std::vector<double> slack(static_cast<size_t>(cols) + 1, kInfinity);
    std::vector<bool> visited(static_cast<size_t>(cols) + 1, false);
    do {
      visited[static_cast<size_t>(col)] = true;
      const int64_t current_row = row_of_col[static_cast<size_t>(col)];
      double delta = kInfinity;
      int64_t next_col = 0;
      for (int64_t c = 1; c <= cols; ++c) {
        const auto cu = static_cast<size_t>(c);
        if (visited[cu]) continue;
        const double reduced =
            at(current_row - 1, c - 1) - row_potential[static_cast<size_t>(current_row)] - col_potential[cu];
        if (reduced < slack[cu]) {
          slack[cu] = reduced;
          previous_col[cu] = col;
        }
        if (slack[cu] < delta) {
          delta = slack[cu];
          next_col = c;
        }
      }
      for (int64_t c = 0; c <= cols; ++c) {
        const auto cu = static_cast<size_t>(c);
        if (visited[cu]) {
          row_potential[static_cast<size_t>(row_of_col[cu])] += delta;
          col_potential[cu] -= delta;
        } else {
          slack[cu] -= delta;
        }
      }
      col = next_col;
    } while (row_of_col[static_cast<size_t>(col)] != 0);
    // Flip the augmenting path back to the virtual column.
    do {
      const int64_t before = previous_col[static_cast<size_t>(col)];
      row_of_col[static_cast<size_t>(col)] = row_of_col[static_cast<size_t>(before)];
      col = before;
    } while (col != 0);
  }
  std::vector<int64_t> column_of(static_cast<size_t>(rows), -1);
  for (int64_t c = 1; c <= cols; ++c) {
    if (row_of_col[static_cast<size_t>(c)] != 0)
      column_of[static_cast<size_t>(row_of_col[static_cast<size_t>(c)] - 1)] = c - 1;
  }
  return column_of;
}

}  // namespace

Assignment linear_sum_assignment(const std::vector<double>& cost, int64_t rows, int64_t cols) {
  if (rows < 0 || cols < 0 || cost.size() != static_cast<size_t>(rows * cols)) {
    throw std::invalid_argument("linear_sum_assignment: the cost matrix has " + std::to_string(cost.size()) +
                                " entries, not " + std::to_string(rows) + " x " + std::to_string(cols));
  }
  for (const double value : cost) {
    if (!std::isfinite(value))
      throw std::invalid_argument("linear_sum_assignment: the cost matrix has a non-finite entry");
  }
  Assignment result;
  if (rows == 0 || cols == 0) return result;
  if (rows <= cols) {
    const auto column_of = assign_rows(cost, rows, cols, false);
    for (int64_t r = 0; r < rows; ++r) {
      result.rows.push_back(r);
      result.cols.push_back(column_of[static_cast<size_t>(r)]);
    }
    return result;
  }
  // More rows than columns: assign every column to a row, then list by row.
  const auto row_of = assign_rows(cost, cols, rows, true);
  std::vector<std::pair<int64_t, int64_t>> pairs;
  for (int64_t c = 0; c < cols; ++c) pairs.emplace_back(row_of[static_cast<size_t>(c)], c);
  std::sort(pairs.begin(), pairs.end());
  for (const auto& [r, c] : pairs) {
    result.rows.push_back(r);
    result.cols.push_back(c);
  }
  return result;
}

}  // namespace vit::models
