#pragma once

#include "models/core/image_model.h"
#include "models/layers/block.h"
#include "models/layers/dropout.h"
#include "models/layers/linear.h"
#include "models/layers/patch_embed.h"
#include "models/vit/vit_options.h"

#include <torch/nn/modules/container/modulelist.h>

#include <vector>

namespace vit::models {

// ViT (Dosovitskiy et al., 2021): patch embedding, a prepended class token, positional
// embedding, a stack of pre-norm encoder blocks, a final LayerNorm, pooling and a linear head.
// Parameter names equal timm's state_dict keys (cls_token, pos_embed, patch_embed.proj.*,
// blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*, norm.*, head.*). Distilled (DeiT):
// a dist_token after the class token and head_dist on it; inference averages the two heads.
// pool avg (timm's global_pool='avg'): no final norm; fc_norm after averaging the patch tokens.
class VisionTransformerImpl : public ImageModelImpl {
 public:
  explicit VisionTransformerImpl(const VitOptions& options);

  // [B, C, H, W] -> logits [B, num_classes] (pooled features [B, D] when num_classes == 0).
  torch::Tensor forward(const torch::Tensor& images) override;
  // Distilled: the class head's and the distillation head's logits, apart.
  TrainingOutputs forward_train(const torch::Tensor& images) override;
  // [B, C, H, W] -> final-norm token states [B, P + N, D] (the P special tokens first).
  torch::Tensor forward_features(const torch::Tensor& images);
  // Patch tokens [B, N, D] (as from patch_embed) -> final-norm token states [B, P + N, D].
  torch::Tensor forward_tokens(const torch::Tensor& patch_tokens, const AttentionMask& mask = {});
  // Token states [B, P + N, D] -> pooled features -> head (distilled: the mean of both heads).
  torch::Tensor forward_head(const torch::Tensor& features);
  // Every block's attention weights [B, H, P + N, P + N], in block order.
  std::vector<torch::Tensor> attention_maps(const torch::Tensor& images) override;
  AttentionLayout attention_layout() const override {
    return {options_.depth, options_.num_heads, options_.grid_size(), options_.num_prefix_tokens()};
  }

  const VitOptions& options() const { return options_; }
  const ModelOptions& model_options() const override { return model_options_; }
  std::string class_name() const override {
    return options_.distilled ? "VisionTransformerDistilled" : "VisionTransformer";
  }
  // Neither the positional embedding nor the special tokens decay (timm's no_weight_decay).
  bool decays(const std::string& name, const torch::Tensor& parameter) const override;
  bool in_head(const std::string& name) const override;
  // The embeddings at 0, block i at i + 1, the norms and heads at depth + 1 (BEiT's layer ids).
  int64_t layer_count() const override { return options_.depth + 1; }
  int64_t layer_of(const std::string& name) const override;

  int64_t macs(const std::string& part) const override;
  // The last block's with forward_blocks_to_first_tokens (head_reads_special_tokens_only).
  int64_t executed_macs(const std::string& part) const override;
  int64_t tokens() const override { return options_.num_tokens(); }
  // What autograd saves in each block (8 [tokens, dim] tensors, the MLP's two hidden
  // activations, the attention weights of every head and the dropout masks), the patch
  // embedding's input and output, and one more block's worth for the gradients in flight.
  int64_t activation_bytes() const override;

 protected:
  // The pieces an encoder built on this one (MAE's) runs in its own order.
  PatchEmbed& patch_embed() { return patch_embed_; }
  const torch::Tensor& cls_token() const { return cls_token_; }
  const torch::Tensor& pos_embed() const { return pos_embed_; }
  // The encoder blocks on embedded tokens, then the final norm (none with pool avg: fc_norm
  // normalizes after pooling instead).
  torch::Tensor encode_tokens(const torch::Tensor& tokens, const AttentionMask& mask = {});
  // An encoder block of these options with this stochastic depth.
  BlockOptions block_options(double drop_path) const;
  // forward() reads the final states of the special tokens alone (class-token pooling, or
  // distilled), so that the last block skips the patch tokens' queries, projection and MLP. Models
  // built on this one whose forward reads every token (MAE, DETR) say no.
  virtual bool head_reads_special_tokens_only() const;

 private:
  torch::Tensor embed(const torch::Tensor& patch_tokens);
  // The final-norm states forward_head reads: only the special tokens' [B, P, D] where
  // head_reads_special_tokens_only (forward_blocks_to_first_tokens), else every token's.
  torch::Tensor features_for_head(const torch::Tensor& images);
  void init_weights();

  VitOptions options_;
  ModelOptions model_options_;
  PatchEmbed patch_embed_{nullptr};
  torch::Tensor cls_token_;
  torch::Tensor dist_token_;  // distilled only
  torch::Tensor pos_embed_;   // parameter when learned, buffer when fixed, undefined for none
  Dropout pos_drop_{nullptr};
  torch::nn::ModuleList block_list_{nullptr};
  std::vector<Block> blocks_;
  torch::nn::LayerNorm norm_{nullptr};     // not with pool avg
  torch::nn::LayerNorm fc_norm_{nullptr};  // pool avg only
  Linear head_{nullptr};
  Linear head_dist_{nullptr};  // distilled with a head only
};
TORCH_MODULE(VisionTransformer);

}  // namespace vit::models
