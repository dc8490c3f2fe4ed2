#pragma once

#include "models/core/image_model.h"
#include "models/layers/drop_path.h"
#include "models/layers/linear.h"
#include "models/layers/mlp.h"
#include "models/layers/patch_embed.h"
#include "models/layers/patch_merging.h"
#include "models/layers/residual_stream.h"
#include "models/layers/window_attention.h"
#include "models/swin/swin_options.h"

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/normalization.h>

#include <vector>

namespace vit::models {

struct SwinBlockOptions {
  int64_t dim;
  int64_t num_heads;
  int64_t resolution;  // the side of the stage's square map
  int64_t window_size;
  int64_t shift_size;  // 0: regular windows; else the cyclic shift before partitioning
  int64_t mlp_hidden_dim;
  bool qkv_bias = true;
  double drop = 0.0;
  double attn_drop = 0.0;
  double drop_path = 0.0;
};

// A pre-norm Transformer block over windows of a channels-last map [B, H, W, C]:
//   x = x + drop_path(unshift(merge(attn(partition(shift(norm1(x)))))))
//   x = x + drop_path(mlp(norm2(x)))
// A shifted block rolls the map by -shift first, masks the pairs the roll brought together
// (the attn_mask buffer) and rolls back after; shift and partition are one gather (WindowTokens).
class SwinBlockImpl : public torch::nn::Module {
 public:
  explicit SwinBlockImpl(const SwinBlockOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  // The same on the stream, leaving the MLP branch pending (as Block::forward_stream).
  ResidualStream forward_stream(const ResidualStream& x);

 private:
  // The attention branch of the normalized map, read as bf16 values where `bf16_values_read`.
  torch::Tensor attend(const torch::Tensor& normalized, bool bf16_values_read);

  SwinBlockOptions options_;
  WindowTokens window_tokens_;
  torch::nn::LayerNorm norm1_{nullptr};
  WindowAttention attn_{nullptr};
  DropPath drop_path1_{nullptr};
  torch::nn::LayerNorm norm2_{nullptr};
  Mlp mlp_{nullptr};
  DropPath drop_path2_{nullptr};
  torch::Tensor attn_mask_;  // shifted blocks only
};
TORCH_MODULE(SwinBlock);

// One stage: patch merging from the previous stage's map (none in the first), then the blocks,
// regular and shifted windows alternating.
class SwinStageImpl : public torch::nn::Module {
 public:
  SwinStageImpl(const SwinOptions& options, int64_t stage, const std::vector<double>& drop_paths);
  torch::Tensor forward(torch::Tensor x);

 private:
  PatchMerging downsample_{nullptr};
  torch::nn::ModuleList block_list_{nullptr};
  std::vector<SwinBlock> blocks_;
};
TORCH_MODULE(SwinStage);

// Swin Transformer (Liu et al., 2021): patch embedding with a norm, stages of window attention
// that halve the map and double the width between them, a final norm, global average pooling and
// a linear head. Parameter names equal timm's (>= 0.9) state_dict keys: patch_embed.{proj,norm},
// layers.N.downsample.{norm,reduction} (N > 0), layers.N.blocks.M.{norm1,
// attn.{qkv,proj,relative_position_bias_table},norm2,mlp.fc1,mlp.fc2}, norm, head.fc.
class SwinTransformerImpl : public ImageModelImpl {
 public:
  explicit SwinTransformerImpl(const SwinOptions& options);

  torch::Tensor forward(const torch::Tensor& images) override;
  // [B, C, H, W] -> the last stage's normalized map [B, h, w, num_features].
  torch::Tensor forward_features(const torch::Tensor& images);

  const SwinOptions& options() const { return options_; }
  const ModelOptions& model_options() const override { return model_options_; }
  std::string class_name() const override { return "SwinTransformer"; }
  // The relative position bias tables do not decay (timm's no_weight_decay_keywords).
  bool decays(const std::string& name, const torch::Tensor& parameter) const override;
  // The patch embedding at 0, block i (counted over all stages) at i + 1, a stage's patch merging
  // with its first block, the final norm and the head at total depth + 1.
  int64_t layer_count() const override { return options_.total_depth() + 1; }
  int64_t layer_of(const std::string& name) const override;

  int64_t macs(const std::string& part) const override;
  int64_t tokens() const override;  // of the first stage: the patch grid
  int64_t activation_bytes() const override;

 private:
  SwinOptions options_;
  ModelOptions model_options_;
  PatchEmbed patch_embed_{nullptr};
  torch::nn::ModuleList layer_list_{nullptr};
  std::vector<SwinStage> layers_;
  torch::nn::LayerNorm norm_{nullptr};
  std::shared_ptr<torch::nn::Module> head_;
  Linear fc_{nullptr};  // head.fc; none without classes
};
TORCH_MODULE(SwinTransformer);

}  // namespace vit::models
