#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace vit::models {

// Where the heads of a [B, N, 3·D] qkv projection and of a [B, N, D] output sit in memory, and of
// the per-head [B, H, N, N] score matrices.
struct HeadLayout {
  int64_t batch, tokens, heads, head_dim;

  int64_t dim() const { return heads * head_dim; }
  int64_t pairs() const { return batch * heads; }
  int64_t batch_of(int64_t pair) const { return pair / heads; }
  int64_t head_of(int64_t pair) const { return pair % heads; }
  // part 0, 1, 2 = q, k, v; rows are 3·D apart.
  int64_t qkv_offset(int64_t pair, int64_t part) const {
    return batch_of(pair) * tokens * 3 * dim() + part * dim() + head_of(pair) * head_dim;
  }
  // rows are D apart.
  int64_t merged_offset(int64_t pair) const { return batch_of(pair) * tokens * dim() + head_of(pair) * head_dim; }
  int64_t scores_offset(int64_t pair) const { return pair * tokens * tokens; }
  int64_t score_multiply_adds() const { return tokens * tokens * head_dim; }
};

// The layout of a contiguous [B, N, 3·D] qkv projection split into num_heads heads.
inline HeadLayout layout_of(const at::Tensor& qkv, int64_t num_heads) {
  return {qkv.size(0), qkv.size(1), num_heads, qkv.size(2) / (3 * num_heads)};
}

constexpr int kQ = 0, kK = 1, kV = 2;

}  // namespace vit::models
