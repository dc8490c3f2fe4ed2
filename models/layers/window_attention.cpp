#include "models/layers/window_attention.h"

#include "models/layers/init.h"

#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/nn/functional/upsampling.h>

#include <cmath>

namespace vit::models {
namespace {

// Large enough that softmax gives the pairs no weight, small enough to stay finite in bf16.
constexpr double kBlocked = -100.0;

// [N, N] index into the (2w-1)^2 table of the offset (dy, dx) from token j to token i.
torch::Tensor relative_position_index(int64_t window) {
  const auto coords = torch::stack(torch::meshgrid({torch::arange(window), torch::arange(window)}, "ij")).flatten(1);
  const auto offsets = coords.unsqueeze(2) - coords.unsqueeze(1) + (window - 1);  // [2, N, N]
  return offsets[0] * (2 * window - 1) + offsets[1];
}

// x [B, L, C] with its tokens taken in `order`; a permutation's gradient goes back through its
// inverse as another gather (LibTorch's index_select backward scatters into zeros).
struct GatherTokens : public torch::autograd::Function<GatherTokens> {
  static torch::Tensor forward(torch::autograd::AutogradContext* context, const torch::Tensor& x,
                               const torch::Tensor& order, const torch::Tensor& inverse) {
    context->save_for_backward({inverse});
    return x.index_select(1, order);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 const torch::autograd::variable_list& output_grads) {
    const auto inverse = context->get_saved_variables()[0];
    return {output_grads[0].index_select(1, inverse), torch::Tensor(), torch::Tensor()};
  }
};

torch::Tensor gather_tokens(const torch::Tensor& x, const torch::Tensor& order, const torch::Tensor& inverse) {
  // The TorchScript tracer cannot record a custom autograd function.
  if (torch::jit::tracer::isTracing()) return x.index_select(1, order);
  return GatherTokens::apply(x, order, inverse);
}

}  // namespace

torch::Tensor window_partition(const torch::Tensor& x, int64_t window) {
  const auto height = x.size(1), width = x.size(2), channels = x.size(3);
  return x.view({-1, height / window, window, width / window, window, channels})
      .permute({0, 1, 3, 2, 4, 5})
      .reshape({-1, window * window, channels});
}

torch::Tensor window_token_order(int64_t height, int64_t width, int64_t window, int64_t shift) {
  const auto positions = torch::arange(height * width).view({1, height, width, 1});
  const auto shifted = shift > 0 ? torch::roll(positions, {-shift, -shift}, {1, 2}) : positions;
  return window_partition(shifted, window).flatten();
}

WindowTokens::WindowTokens(int64_t height, int64_t width, int64_t window, int64_t shift)
    : height_(height), width_(width), window_(window), order_(window_token_order(height, width, window, shift)) {
  inverse_ = torch::empty_like(order_).index_put_({order_}, torch::arange(order_.numel()));
}

torch::Tensor WindowTokens::partition(const torch::Tensor& map) const {
  const auto tokens = map.flatten(1, 2);
  return gather_tokens(tokens, order_.to(map.device()), inverse_.to(map.device()))
      .view({-1, window_ * window_, map.size(3)});
}

torch::Tensor WindowTokens::merge(const torch::Tensor& windows) const {
  const auto channels = windows.size(2);
  const auto tokens = windows.reshape({-1, height_ * width_, channels});
  return gather_tokens(tokens, inverse_.to(windows.device()), order_.to(windows.device()))
      .view({-1, height_, width_, channels});
}

torch::Tensor shifted_window_mask(int64_t height, int64_t width, int64_t window, int64_t shift) {
  // After the shift, the last window row and column hold tokens of up to three regions per axis:
  // the unshifted interior, the part shifted in from the near edge, and the part from the far one.
  auto regions = torch::zeros({1, height, width, 1});
  const std::pair<int64_t, int64_t> rows[] = {
      {0, height - window}, {height - window, height - shift}, {height - shift, height}};
  const std::pair<int64_t, int64_t> columns[] = {
      {0, width - window}, {width - window, width - shift}, {width - shift, width}};
  double region = 0.0;
  for (const auto& [top, bottom] : rows) {
    for (const auto& [left, right] : columns) {
      regions.slice(1, top, bottom).slice(2, left, right).fill_(region);
      region += 1.0;
    }
  }
  const auto ids = window_partition(regions, window).squeeze(-1);  // [nW, N]
  const auto apart = ids.unsqueeze(1) != ids.unsqueeze(2);
  return torch::zeros(apart.sizes()).masked_fill(apart, kBlocked);
}

WindowAttentionImpl::WindowAttentionImpl(const WindowAttentionOptions& options)
    : AttentionImpl(
          AttentionOptions{options.dim, options.num_heads, options.qkv_bias, options.attn_drop, options.proj_drop}),
      window_size_(options.window_size) {
  const int64_t offsets = 2 * options.window_size - 1;
  relative_position_bias_table_ =
      register_parameter("relative_position_bias_table", torch::zeros({offsets * offsets, options.num_heads}));
  trunc_normal_(relative_position_bias_table_, kInitStd);
  relative_position_index_ = register_buffer("relative_position_index", relative_position_index(options.window_size));
}

torch::Tensor WindowAttentionImpl::relative_position_bias() const {
  const int64_t tokens = window_size_ * window_size_;
  return relative_position_bias_table_.index_select(0, relative_position_index_.flatten())
      .view({tokens, tokens, -1})
      .permute({2, 0, 1});
}

AttentionMask WindowAttentionImpl::mask_of(const torch::Tensor& shift_mask) const {
  AttentionMask mask;
  mask.bias = shift_mask.defined() ? relative_position_bias().unsqueeze(0) + shift_mask.unsqueeze(1)
                                   : relative_position_bias().unsqueeze(0);
  return mask;
}

torch::Tensor WindowAttentionImpl::forward(const torch::Tensor& windows, const torch::Tensor& shift_mask) {
  return AttentionImpl::forward(windows, mask_of(shift_mask));
}

torch::Tensor WindowAttentionImpl::forward_bf16_values(const torch::Tensor& windows_values,
                                                       const torch::Tensor& shift_mask) {
  return AttentionImpl::forward_bf16_values(windows_values, mask_of(shift_mask));
}

torch::Tensor resample_relative_position_bias_table(const torch::Tensor& table, int64_t new_window) {
  const auto old_offsets = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(table.size(0)))));
  const int64_t new_offsets = 2 * new_window - 1;
  if (old_offsets == new_offsets) return table;
  const auto heads = table.size(1);
  const auto grid = table.to(torch::kFloat32).transpose(0, 1).reshape({1, heads, old_offsets, old_offsets});
  const auto resized =
      torch::nn::functional::interpolate(grid, torch::nn::functional::InterpolateFuncOptions()
                                                   .size(std::vector<int64_t>{new_offsets, new_offsets})
                                                   .mode(torch::kBicubic)
                                                   .align_corners(false));
  return resized.reshape({heads, new_offsets * new_offsets}).transpose(0, 1).contiguous();
}

}  // namespace vit::models
