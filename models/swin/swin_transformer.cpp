#include "models/swin/swin_transformer.h"

#include "models/layers/block.h"
#include "models/layers/init.h"

namespace vit::models {
namespace {

torch::nn::LayerNorm layer_norm(int64_t dim) { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})); }

// The block options of block `index` of stage `stage`: odd blocks shift their windows.
SwinBlockOptions block_options(const SwinOptions& o, int64_t stage, int64_t index, double drop_path) {
  return {o.stage_dim(stage),
          o.num_heads[static_cast<size_t>(stage)],
          o.stage_resolution(stage),
          o.stage_window(stage),
          index % 2 == 1 ? o.stage_shift(stage) : 0,
          o.mlp_hidden_dim(stage),
          o.qkv_bias,
          o.drop_rate,
          o.attn_drop_rate,
          drop_path};
}

// A Swin block's cost as a ViT block's over each window.
BlockOptions as_vit_block(const SwinBlockOptions& o) {
  return {o.dim,      o.num_heads, static_cast<double>(o.mlp_hidden_dim) / static_cast<double>(o.dim),
          o.qkv_bias, o.drop,      o.attn_drop};
}

int64_t windows_of(const SwinBlockOptions& o) {
  const auto per_side = o.resolution / o.window_size;
  return per_side * per_side;
}

// Stage and block of a parameter name "layers.S.blocks.M...." or "layers.S.downsample...."
std::pair<int64_t, int64_t> stage_and_block(const std::string& name) {
  size_t end = 0;
  const auto stage = std::stoll(name.substr(std::string("layers.").size()), &end);
  const auto rest = name.substr(std::string("layers.").size() + end);
  if (rest.rfind(".blocks.", 0) != 0) return {stage, 0};
  return {stage, std::stoll(rest.substr(std::string(".blocks.").size()))};
}

}  // namespace

SwinBlockImpl::SwinBlockImpl(const SwinBlockOptions& options)
    : options_(options),
      window_tokens_(options.resolution, options.resolution, options.window_size, options.shift_size) {
  norm1_ = register_module("norm1", layer_norm(options.dim));
  attn_ = register_module("attn",
                          WindowAttention(WindowAttentionOptions{options.dim, options.num_heads, options.window_size,
                                                                 options.qkv_bias, options.attn_drop, options.drop}));
  drop_path1_ = register_module("drop_path1", DropPath(options.drop_path));
  norm2_ = register_module("norm2", layer_norm(options.dim));
  mlp_ = register_module("mlp", Mlp(MlpOptions{options.dim, options.mlp_hidden_dim, options.drop}));
  drop_path2_ = register_module("drop_path2", DropPath(options.drop_path));
  if (options.shift_size > 0) {
    attn_mask_ = register_buffer("attn_mask", shifted_window_mask(options.resolution, options.resolution,
                                                                  options.window_size, options.shift_size));
  }
}

torch::Tensor SwinBlockImpl::attend(const torch::Tensor& normalized, bool bf16_values_read) {
  const auto windows = window_tokens_.partition(normalized);
  return window_tokens_.merge(bf16_values_read ? attn_->forward_bf16_values(windows, attn_mask_)
                                               : attn_(windows, attn_mask_));
}

ResidualStream SwinBlockImpl::forward_stream(const ResidualStream& x) {
  const bool bf16_values_read = reads_bf16_values(x.residual);
  const auto [input, normalized] = normalize_for_products(x, norm1_, bf16_values_read);
  const auto attention_branch = drop_path1_(attend(normalized, bf16_values_read));
  const auto [attended, normalized_attended] =
      normalize_for_products({input, attention_branch}, norm2_, bf16_values_read);
  // The MLP branch leaves its rounding or its bias, and its factors, to the next block's norm1.
  const auto branch = mlp_branch(mlp_, attended, normalized_attended, bf16_values_read, /*unscaled=*/true);
  return {attended, with_drop_path(drop_path2_, branch)};
}

torch::Tensor SwinBlockImpl::forward(const torch::Tensor& x) { return forward_stream({x, {}}).value(); }

SwinStageImpl::SwinStageImpl(const SwinOptions& options, int64_t stage, const std::vector<double>& drop_paths) {
  if (stage > 0) downsample_ = register_module("downsample", PatchMerging(options.stage_dim(stage - 1)));
  block_list_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t index = 0; index < options.depths[static_cast<size_t>(stage)]; ++index) {
    blocks_.emplace_back(block_options(options, stage, index, drop_paths[static_cast<size_t>(index)]));
    block_list_->push_back(blocks_.back());
  }
}

torch::Tensor SwinStageImpl::forward(torch::Tensor x) {
  if (!downsample_.is_empty()) x = downsample_(x);
  ResidualStream stream{x, {}};
  for (auto& block : blocks_) stream = block->forward_stream(stream);
  return stream.value();
}

SwinTransformerImpl::SwinTransformerImpl(const SwinOptions& options)
    : options_(options), model_options_(kSwinArch, options) {
  options.validate();
  PatchEmbedOptions embed{options.image_size, options.patch_size, options.in_chans, options.embed_dim};
  embed.norm = true;
  patch_embed_ = register_module("patch_embed", PatchEmbed(embed));
  layer_list_ = register_module("layers", torch::nn::ModuleList());
  // Stochastic depth rises over all blocks of all stages.
  int64_t block = 0;
  for (int64_t stage = 0; stage < options.stage_count(); ++stage) {
    std::vector<double> drop_paths;
    for (int64_t index = 0; index < options.depths[static_cast<size_t>(stage)]; ++index, ++block) {
      drop_paths.push_back(drop_path_at(options.drop_path_rate, block, options.total_depth()));
    }
    layers_.emplace_back(options, stage, drop_paths);
    layer_list_->push_back(layers_.back());
  }
  norm_ = register_module("norm", layer_norm(options.num_features()));
  head_ = register_module("head", std::make_shared<torch::nn::Module>("ClassifierHead"));
  if (options.num_classes > 0) {
    fc_ = head_->register_module("fc", Linear(options.num_features(), options.num_classes));
  }
  // timm's Swin init: norms and the patch convolution keep PyTorch's defaults; the bias tables
  // are drawn by WindowAttention.
  init_linear_layers(*this, kInitStd);
}

torch::Tensor SwinTransformerImpl::forward_features(const torch::Tensor& images) {
  const auto grid = options_.image_size / options_.patch_size;
  auto x = patch_embed_(images).unflatten(1, {grid, grid});  // [B, H, W, C]
  for (auto& stage : layers_) x = stage(x);
  return norm_(x);
}

torch::Tensor SwinTransformerImpl::forward(const torch::Tensor& images) {
  const auto pooled = forward_features(images).mean({1, 2});
  return fc_.is_empty() ? pooled : fc_(pooled);
}

bool SwinTransformerImpl::decays(const std::string& name, const torch::Tensor& parameter) const {
  const std::string table = "relative_position_bias_table";
  const bool is_table =
      name.size() >= table.size() && name.compare(name.size() - table.size(), table.size(), table) == 0;
  return parameter.dim() > 1 && !is_table;
}

int64_t SwinTransformerImpl::layer_of(const std::string& name) const {
  if (name.rfind("patch_embed.", 0) == 0) return 0;
  if (name.rfind("layers.", 0) != 0) return layer_count();
  const auto [stage, block] = stage_and_block(name);
  int64_t before = 0;
  for (int64_t s = 0; s < stage; ++s) before += options_.depths[static_cast<size_t>(s)];
  return before + block + 1;
}

int64_t SwinTransformerImpl::macs(const std::string& part) const {
  const auto& o = options_;
  if (part == "patch_embed") {
    const auto grid = o.image_size / o.patch_size;
    return grid * grid * o.embed_dim * o.in_chans * o.patch_size * o.patch_size;
  }
  if (part == "head") return o.num_features() * o.num_classes;
  if (part.rfind("layers.", 0) != 0) return 0;
  const auto stage = std::stoll(part.substr(std::string("layers.").size()));
  const auto side = o.stage_resolution(stage);
  // Patch merging: a (4C -> 2C) projection per output position.
  int64_t total = stage > 0 ? side * side * 4 * o.stage_dim(stage - 1) * 2 * o.stage_dim(stage - 1) : 0;
  for (int64_t index = 0; index < o.depths[static_cast<size_t>(stage)]; ++index) {
    const auto block = block_options(o, stage, index, 0.0);
    total += windows_of(block) * block_macs(as_vit_block(block), block.window_size * block.window_size);
  }
  return total;
}

int64_t SwinTransformerImpl::tokens() const {
  const auto grid = options_.image_size / options_.patch_size;
  return grid * grid;
}

int64_t SwinTransformerImpl::activation_bytes() const {
  // Per block: a ViT block's saved tensors over each window, and the shifted and partitioned copies
  // of its input (two [tokens, dim] tensors); per merge its concatenated input and normalized copy.
  const auto& o = options_;
  int64_t floats = o.in_chans * o.image_size * o.image_size + 2 * tokens() * o.embed_dim;
  int64_t largest_block = 0;
  for (int64_t stage = 0; stage < o.stage_count(); ++stage) {
    const auto side = o.stage_resolution(stage);
    if (stage > 0) floats += 2 * side * side * 4 * o.stage_dim(stage - 1);
    for (int64_t index = 0; index < o.depths[static_cast<size_t>(stage)]; ++index) {
      const auto block = block_options(o, stage, index, 0.0);
      const auto window_tokens = block.window_size * block.window_size;
      const auto per_block =
          windows_of(block) * block_activation_floats(as_vit_block(block), window_tokens) + 2 * side * side * block.dim;
      floats += per_block;
      largest_block = std::max(largest_block, per_block);
    }
  }
  // One more block's worth for the gradients in flight, as for the ViT.
  return static_cast<int64_t>(sizeof(float)) * (floats + largest_block);
}

}  // namespace vit::models
