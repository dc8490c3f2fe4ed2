#pragma once

#include "models/core/detection_model.h"
#include "models/detr/detr_options.h"
#include "models/layers/decoder_block.h"
#include "models/layers/linear.h"
#include "models/vit/vision_transformer.h"

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>

namespace vit::models {

// DETR (Carion et al., 2020) with a ViT backbone. The backbone's parameters keep the ViT's names
// (patch_embed, cls_token, pos_embed, blocks.N, norm), so a ViT or MAE checkpoint initialises it by
// name (model.pretrained); the rest: encoder.N and encoder_norm (extra encoder blocks),
// query_embed [Q, D], decoder_blocks.N, decoder_norm, class_embed, bbox_embed.{0,2,4} (the 3-layer
// box MLP), query_anchor [Q, 2] with anchor_queries. The decoder starts from zeros, adds the learned queries as
// positions to its queries and fixed 2-D sin-cos positions to the image tokens' keys at every block, and every block's
// output (through decoder_norm) feeds the shared heads: auxiliary predictions. forward() gives the class logits [B, Q,
// C + 1]; detect() the logits and boxes.
class DetrImpl : public VisionTransformerImpl, public DetectionModel {
 public:
  explicit DetrImpl(const DetrOptions& options);

  torch::Tensor forward(const torch::Tensor& images) override;
  Predictions detect(const torch::Tensor& images) override;
  std::vector<Predictions> detect_per_layer(const torch::Tensor& images) override;
  int64_t num_queries() const override { return detr_.num_queries; }

  const DetrOptions& detr_options() const { return detr_; }
  const ModelOptions& model_options() const override { return model_options_; }
  std::string class_name() const override { return "DETR"; }
  // Everything but the backbone counts as the head: train.backbone_lr_scale slows the backbone alone
  // (DETR's lr_backbone).
  bool in_head(const std::string& name) const override;
  // The backbone's class-token attention is not what DETR's predictions come from.
  AttentionLayout attention_layout() const override { return {}; }

  int64_t macs(const std::string& part) const override;
  int64_t activation_bytes() const override;

 protected:
  // The decoder reads every patch token.
  bool head_reads_special_tokens_only() const override { return false; }

 private:
  // The image tokens the decoder reads [B, N, D] (the backbone's patch tokens, then the extra encoder).
  torch::Tensor encode(const torch::Tensor& images);
  // decoder_norm of every decoder block's output, [L, B, Q, D], in block order.
  torch::Tensor decode(const torch::Tensor& memory);
  Predictions heads(const torch::Tensor& states);
  // What the decoder adds to its queries and keys [1, Q, D]: the learned positions, and with
  // anchor_queries the sin-cos positions of the reference points on the patch grid.
  torch::Tensor query_positions() const;
  DecoderBlockOptions decoder_block_options() const;

  DetrOptions detr_;
  ModelOptions model_options_;
  torch::nn::ModuleList encoder_list_{nullptr};
  std::vector<Block> encoder_blocks_;
  torch::nn::LayerNorm encoder_norm_{nullptr};  // with extra encoder blocks only
  torch::Tensor memory_pos_;
  torch::Tensor query_embed_;
  torch::Tensor query_anchor_;  // anchor_queries: [Q, 2] reference points (cx, cy) in logit space
  torch::nn::ModuleList decoder_list_{nullptr};
  std::vector<DecoderBlock> decoder_blocks_;
  torch::nn::LayerNorm decoder_norm_{nullptr};
  Linear class_embed_{nullptr};
  torch::nn::Sequential bbox_embed_{nullptr};
};
TORCH_MODULE(Detr);

}  // namespace vit::models
