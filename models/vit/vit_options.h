#pragma once

#include "models/core/name_table.h"

#include <cstdint>

namespace vit::models {

// model.arch of the Vision Transformer.
inline constexpr const char* kVitArch = "vit";

enum class PosEmbedKind {
  Learned,     // trainable, truncated-normal init (timm/DeiT)
  SinCos2d,    // fixed 2-D sin-cos over the patch grid (MAE, "ViT-22B")
  Sinusoid1d,  // fixed 1-D sinusoid of "Attention Is All You Need" over token positions
  None,
};

enum class PoolKind {
  Cls,   // the class token's final state
  Mean,  // mean of the final-norm patch tokens (class token excluded)
  Avg,   // timm's global_pool='avg' (MAE's fine-tuning): mean of the patch tokens, then fc_norm
};

inline const NameTable<PosEmbedKind> kPosEmbedNames = {{"learned", PosEmbedKind::Learned},
                                                       {"sincos", PosEmbedKind::SinCos2d},
                                                       {"sinusoid", PosEmbedKind::Sinusoid1d},
                                                       {"none", PosEmbedKind::None}};
inline const NameTable<PoolKind> kPoolNames = {
    {"cls", PoolKind::Cls}, {"mean", PoolKind::Mean}, {"avg", PoolKind::Avg}};

// The hyper-parameters of a Vision Transformer, named as in timm's VisionTransformer.
struct VitOptions {
  int64_t image_size = 224;
  int64_t patch_size = 16;
  int64_t in_chans = 3;
  int64_t num_classes = 1000;  // 0: no head, forward() returns pooled features
  int64_t embed_dim = 768;
  int64_t depth = 12;
  int64_t num_heads = 12;
  double mlp_ratio = 4.0;
  bool qkv_bias = true;
  PosEmbedKind pos_embed = PosEmbedKind::Learned;
  PoolKind pool = PoolKind::Cls;
  double drop_rate = 0.0;         // after the positional embedding, inside the MLP and after projections
  double attn_drop_rate = 0.0;    // on the attention weights
  double drop_path_rate = 0.0;    // stochastic depth, rising linearly to this value over the blocks
  double layer_scale_init = 0.0;  // LayerScale's initial gamma (CaiT); 0 disables LayerScale
  // DeiT's distillation token beside the class token, with a head of its own (timm's
  // VisionTransformerDistilled); a teacher's predictions supervise it.
  bool distilled = false;

  int64_t grid_size() const { return image_size / patch_size; }
  int64_t num_patches() const { return grid_size() * grid_size(); }
  int64_t num_prefix_tokens() const { return distilled ? 2 : 1; }  // class (+ distillation) token
  int64_t num_tokens() const { return num_patches() + num_prefix_tokens(); }
  int64_t head_dim() const { return embed_dim / num_heads; }
  int64_t mlp_hidden_dim() const { return static_cast<int64_t>(static_cast<double>(embed_dim) * mlp_ratio); }

  // Throws std::invalid_argument naming the first inconsistent field.
  void validate() const;
};

}  // namespace vit::models
