#pragma once

#include "models/core/masked_image_model.h"
#include "models/layers/linear.h"
#include "models/mae/mae_options.h"
#include "models/vit/vision_transformer.h"

namespace vit::models {

// MAE (He et al., 2022): the ViT encoder sees only the visible patches (with the class token);
// the decoder embeds its output, puts a shared mask token at every hidden patch, restores the
// patch order, adds its own positions and predicts every patch's pixels; the loss is the mean
// squared error over the hidden patches. Parameter names equal the official code's and timm's
// (the encoder's as the ViT's; mask_token, decoder_embed, decoder_pos_embed, decoder_blocks.N,
// decoder_norm, decoder_pred), so a fine-tuned ViT takes the encoder's weights by name.
// forward() gives the encoder's class-token features of whole images.
class MaskedAutoencoderImpl : public VisionTransformerImpl, public MaskedImageModel {
 public:
  explicit MaskedAutoencoderImpl(const MaeOptions& options);

  int64_t mask_noise_size() const override { return mae_.encoder.num_patches(); }
  torch::Tensor reconstruction_loss(const torch::Tensor& images, const torch::Tensor& noise) override;
  Reconstruction reconstruct(const torch::Tensor& images, const torch::Tensor& noise) override;

  // [B, C, H, W] -> [B, N, P * P * C]: patches in row-major order, each row by row with the
  // channels last (MAE's patchify, which decoder_pred's rows follow), and back.
  torch::Tensor patchify(const torch::Tensor& images) const;
  torch::Tensor unpatchify(const torch::Tensor& patches) const;

  const MaeOptions& mae_options() const { return mae_; }
  const ModelOptions& model_options() const override { return model_options_; }
  std::string class_name() const override { return "MaskedAutoencoderViT"; }
  bool decays(const std::string& name, const torch::Tensor& parameter) const override;

  // The cost of a pretraining step's forward: the encoder over the visible patches, the decoder
  // over all of them.
  int64_t macs(const std::string& part) const override;
  int64_t tokens() const override { return mae_.visible_patches() + 1; }
  int64_t activation_bytes() const override;

 protected:
  // The decoder reads every visible token.
  bool head_reads_special_tokens_only() const override { return false; }

 private:
  // Which patches each image keeps: the indices of the visible ones [B, K] (lowest noise first),
  // the permutation that puts the shuffled sequence back in patch order [B, N], and the mask
  // [B, N] (1 = hidden) in patch order.
  struct Masking {
    torch::Tensor keep;
    torch::Tensor restore;
    torch::Tensor mask;
  };
  Masking masking(const torch::Tensor& noise) const;
  torch::Tensor encode(const torch::Tensor& images, const Masking& masking);  // [B, 1 + K, D]
  torch::Tensor decode(const torch::Tensor& latent, const Masking& masking);  // [B, N, P * P * C], fp32
  // The pixels the decoder learns to predict, and with norm_pix_loss each patch's mean and std.
  struct Targets {
    torch::Tensor pixels;
    torch::Tensor mean;
    torch::Tensor std;
  };
  Targets targets(const torch::Tensor& images) const;
  BlockOptions decoder_block_options() const;
  void init_mae_weights();

  MaeOptions mae_;
  ModelOptions model_options_;
  torch::Tensor mask_token_;
  Linear decoder_embed_{nullptr};
  torch::Tensor decoder_pos_embed_;  // fixed 2-D sin-cos, a zero row for the class token
  torch::nn::ModuleList decoder_block_list_{nullptr};
  std::vector<Block> decoder_blocks_;
  torch::nn::LayerNorm decoder_norm_{nullptr};
  Linear decoder_pred_{nullptr};
};
TORCH_MODULE(MaskedAutoencoder);

}  // namespace vit::models
