#pragma once

#include "models/layers/attention.h"
#include "models/layers/drop_path.h"
#include "models/layers/layer_scale.h"
#include "models/layers/mlp.h"
#include "models/layers/residual_stream.h"

#include <torch/nn/modules/normalization.h>

namespace vit::models {

// LayerNorm with timm's ViT epsilon (1e-6), for the blocks and the final norm.
torch::nn::LayerNorm vit_layer_norm(int64_t dim);

struct BlockOptions {
  int64_t dim;
  int64_t num_heads;
  double mlp_ratio = 4.0;
  bool qkv_bias = true;
  double drop = 0.0;
  double attn_drop = 0.0;
  double drop_path = 0.0;
  double layer_scale_init = 0.0;  // 0: no LayerScale
};

// The cost model of one block over `tokens` tokens: multiply-accumulates (projections, MLP, QK^T
// and weights x V over all heads), and the floats autograd keeps for its backward (8 [tokens, dim]
// tensors, the MLP's two hidden activations, the attention weights and the dropout masks).
int64_t block_macs(const BlockOptions& options, int64_t tokens);
// The same where only the first `queries` tokens make queries and run the output projection and
// the MLP (BlockImpl::forward_first_tokens).
int64_t block_macs(const BlockOptions& options, int64_t tokens, int64_t queries);
int64_t block_activation_floats(const BlockOptions& options, int64_t tokens);

// The MLP branch of a pre-norm block on `normalized` (the LayerNorm's output of the stream `sum`),
// leaving to the pass that adds it to `sum` what the MLP can leave where no LayerScale follows
// (`unscaled`): the rounding of its fp32 product to bf16 where `bf16_values_read`, else fc2's bias
// where that pass is residual_layer_norm's kernel.
ResidualBranch mlp_branch(Mlp& mlp, const torch::Tensor& sum, const torch::Tensor& normalized, bool bf16_values_read,
                          bool unscaled);

// The branch after LayerScale (where `scale` is not null or empty) and stochastic depth: applied
// here to a plain branch; where the branch leaves the pass that adds it its bias or its rounding
// (which come first; such a branch has no LayerScale), left to that pass as each sample's factor.
ResidualBranch with_drop_path(DropPath& drop_path, const ResidualBranch& branch, LayerScale* scale = nullptr);

// Pre-norm Transformer encoder block:
//   x = x + drop_path(ls1(attn(norm1(x))))
//   x = x + drop_path(ls2(mlp(norm2(x))))
class BlockImpl : public torch::nn::Module {
 public:
  explicit BlockImpl(const BlockOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const AttentionMask& mask = {});
  // The same on the stream, leaving the MLP branch pending.
  ResidualStream forward_stream(const ResidualStream& x, const AttentionMask& mask = {});
  // forward_stream's value in the first `tokens` rows alone, [B, tokens, D], for a caller that reads
  // nothing else: the keys and values still come from every token; the queries, the output
  // projection and the MLP run on those rows only.
  torch::Tensor forward_first_tokens(const ResidualStream& x, int64_t tokens);
  // Also returns this block's attention weights [B, H, N, N].
  std::pair<torch::Tensor, torch::Tensor> forward_with_attention(const torch::Tensor& x,
                                                                 const AttentionMask& mask = {});

 private:
  // x plus the attention branch, and the MLP branch of that sum's norm2, pending. A branch whose
  // layer left its bias or its rounding to bf16 to the pass that adds it goes in with stochastic
  // depth's factors for that pass too (it has no LayerScale); a plain one gets LayerScale and
  // stochastic depth here.
  ResidualStream add_attention(const torch::Tensor& x, const ResidualBranch& attended);
  // Neither branch has a LayerScale (a per-channel factor, which the pass adding a branch does not apply).
  bool without_layer_scale() const;
  // Whether the attention branch leaves its projection's bias to the LayerNorm pass that adds it
  // to the stream x: no LayerScale, the layer can leave it, and that pass is residual_layer_norm's
  // kernel (the MLP branch decides likewise in mlp_branch).
  bool attention_leaves_bias(const torch::Tensor& x) const;

  torch::nn::LayerNorm norm1_{nullptr};
  Attention attn_{nullptr};
  LayerScale ls1_{nullptr};
  DropPath drop_path1_{nullptr};
  torch::nn::LayerNorm norm2_{nullptr};
  Mlp mlp_{nullptr};
  LayerScale ls2_{nullptr};
  DropPath drop_path2_{nullptr};
};
TORCH_MODULE(Block);

// x through the blocks and then final_norm (none if empty): each residual add in one pass with the
// LayerNorm that reads its sum.
torch::Tensor forward_blocks(std::vector<Block>& blocks, const torch::Tensor& x, torch::nn::LayerNorm& final_norm,
                             const AttentionMask& mask = {});

// forward_blocks' output in the first `tokens` rows alone, [B, tokens, D], where nothing reads the
// others (a head on the class token): the last block runs forward_first_tokens. Without a mask.
torch::Tensor forward_blocks_to_first_tokens(std::vector<Block>& blocks, const torch::Tensor& x,
                                             torch::nn::LayerNorm& final_norm, int64_t tokens);

}  // namespace vit::models
