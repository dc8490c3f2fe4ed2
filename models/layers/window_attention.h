#pragma once

#include "models/layers/attention.h"

namespace vit::models {

// Square windows of a channels-last feature map (Swin, Liu et al., 2021).
// [B, H, W, C] -> [B * (H/w) * (W/w), w*w, C], windows in row-major order, tokens row-major inside.
torch::Tensor window_partition(const torch::Tensor& x, int64_t window);
// Where the tokens of the windows of an H x W map cyclically shifted by -shift (torch::roll by
// (-shift, -shift)) come from: [H·W] row-major positions in the unshifted map, in window_partition's
// order.
torch::Tensor window_token_order(int64_t height, int64_t width, int64_t window, int64_t shift);

// A block's shift and window partition of a channels-last map as one gather of its tokens, and the
// merge and unshift of the windows as the inverse gather: one copy each way, forwards and backwards
// (a roll, a partition and their reverses copied the map up to three times each).
class WindowTokens {
 public:
  WindowTokens(int64_t height, int64_t width, int64_t window, int64_t shift);
  // [B, H, W, C] -> [B * (H/w) * (W/w), w*w, C]
  torch::Tensor partition(const torch::Tensor& map) const;
  // The inverse: [B * nW, w*w, C] -> [B, H, W, C]; the batch size stays symbolic when traced.
  torch::Tensor merge(const torch::Tensor& windows) const;

 private:
  int64_t height_, width_, window_;
  torch::Tensor order_, inverse_;  // a permutation of the H·W tokens and its inverse
};
// The additive mask [nW, w*w, w*w] of a map cyclically shifted by `shift`: 0 between tokens of the
// same region, -100 between tokens the shift brought together from opposite edges.
torch::Tensor shifted_window_mask(int64_t height, int64_t width, int64_t window, int64_t shift);

struct WindowAttentionOptions {
  int64_t dim;
  int64_t num_heads;
  int64_t window_size;
  bool qkv_bias = true;
  double attn_drop = 0.0;
  double proj_drop = 0.0;
};

// Multi-head self-attention inside windows of window_size^2 tokens with Swin's learned relative
// position bias: a [(2w-1)^2, heads] table, read at each (query, key) offset through the fixed
// relative_position_index [w*w, w*w] (timm's names), added to the scores with the shift mask.
class WindowAttentionImpl : public AttentionImpl {
 public:
  explicit WindowAttentionImpl(const WindowAttentionOptions& options);
  // windows [B * nW, w*w, C] -> [B * nW, w*w, C]; shift_mask [nW, w*w, w*w] or undefined.
  torch::Tensor forward(const torch::Tensor& windows, const torch::Tensor& shift_mask = {});
  // The same on windows held as bf16 values in fp32 (AttentionImpl::forward_bf16_values).
  torch::Tensor forward_bf16_values(const torch::Tensor& windows_values, const torch::Tensor& shift_mask = {});
  // The bias every window's attention scores get, [heads, w*w, w*w].
  torch::Tensor relative_position_bias() const;

 private:
  // The bias and the shift mask as one [nW | 1, heads, N, N] addend, added to the scores in one pass.
  AttentionMask mask_of(const torch::Tensor& shift_mask) const;

  int64_t window_size_;
  torch::Tensor relative_position_bias_table_;
  torch::Tensor relative_position_index_;
};
TORCH_MODULE(WindowAttention);

// A relative position bias table [(2w-1)^2, heads] of one window size resampled bicubically to
// another (timm's resize_rel_pos_bias_table), for weights used with a different window.
torch::Tensor resample_relative_position_bias_table(const torch::Tensor& table, int64_t new_window);

}  // namespace vit::models
