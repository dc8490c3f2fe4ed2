#include "models/vit/vision_transformer.h"

#include "models/layers/init.h"
#include "models/layers/pos_embed.h"

namespace vit::models {
namespace {

// [1, prefix + num_patches, dim] fixed table, with all-zero rows for the special tokens where the
// table is defined over the patch grid only.
torch::Tensor fixed_pos_embed(const VitOptions& options) {
  const auto dim = options.embed_dim;
  if (options.pos_embed == PosEmbedKind::Sinusoid1d) return sinusoid_1d(options.num_tokens(), dim).unsqueeze(0);
  const auto patches = sincos_2d(options.grid_size(), dim);
  return torch::cat({torch::zeros({options.num_prefix_tokens(), dim}), patches}, 0).unsqueeze(0);
}

// A distilled model's two heads on their tokens' final states [B, P + N, D]: the class head on the
// class token, head_dist on the distillation token.
ImageModelImpl::TrainingOutputs distilled_heads(Linear& head, Linear& head_dist, const torch::Tensor& features) {
  return {head(features.select(1, 0)), head_dist(features.select(1, 1))};
}

}  // namespace

VisionTransformerImpl::VisionTransformerImpl(const VitOptions& options)
    : options_(options), model_options_(kVitArch, options) {
  options.validate();
  const auto dim = options.embed_dim;
  patch_embed_ = register_module(
      "patch_embed", PatchEmbed(PatchEmbedOptions{options.image_size, options.patch_size, options.in_chans, dim}));
  cls_token_ = register_parameter("cls_token", torch::zeros({1, 1, dim}));
  if (options.distilled) dist_token_ = register_parameter("dist_token", torch::zeros({1, 1, dim}));
  switch (options.pos_embed) {
    case PosEmbedKind::Learned:
      pos_embed_ = register_parameter("pos_embed", torch::zeros({1, options.num_tokens(), dim}));
      break;
    case PosEmbedKind::SinCos2d:
    case PosEmbedKind::Sinusoid1d:
      pos_embed_ = register_buffer("pos_embed", fixed_pos_embed(options));
      break;
    case PosEmbedKind::None:
      break;
  }
  pos_drop_ = register_module("pos_drop", Dropout(options.drop_rate));

  block_list_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.depth; ++i) {
    blocks_.emplace_back(block_options(drop_path_at(options.drop_path_rate, i, options.depth)));
    block_list_->push_back(blocks_.back());
  }
  if (options.pool == PoolKind::Avg) {
    fc_norm_ = register_module("fc_norm", vit_layer_norm(dim));
  } else {
    norm_ = register_module("norm", vit_layer_norm(dim));
  }
  if (options.num_classes > 0) {
    head_ = register_module("head", Linear(dim, options.num_classes));
    if (options.distilled) head_dist_ = register_module("head_dist", Linear(dim, options.num_classes));
  }
  init_weights();
}

void VisionTransformerImpl::init_weights() {
  // timm's default ('') scheme: truncated normal for Linear weights and the learned position
  // table, zero biases, a near-zero class token; convolutions and norms keep PyTorch's defaults.
  torch::NoGradGuard no_grad;
  if (options_.pos_embed == PosEmbedKind::Learned) trunc_normal_(pos_embed_, kInitStd);
  cls_token_.normal_(0.0, 1e-6);
  if (dist_token_.defined()) trunc_normal_(dist_token_, kInitStd);  // as timm's VisionTransformerDistilled
  init_linear_layers(*this, kInitStd);
}

torch::Tensor VisionTransformerImpl::embed(const torch::Tensor& patch_tokens) {
  // expand_as rather than expand(size(0), ...): a traced graph then keeps the batch size symbolic.
  const auto one_token = patch_tokens.narrow(1, 0, 1);
  auto tokens = dist_token_.defined()
                    ? torch::cat({cls_token_.expand_as(one_token), dist_token_.expand_as(one_token), patch_tokens}, 1)
                    : torch::cat({cls_token_.expand_as(one_token), patch_tokens}, 1);
  if (pos_embed_.defined()) tokens = tokens + pos_embed_;
  return pos_drop_(tokens);
}

torch::Tensor VisionTransformerImpl::forward_tokens(const torch::Tensor& patch_tokens, const AttentionMask& mask) {
  return encode_tokens(embed(patch_tokens), mask);
}

torch::Tensor VisionTransformerImpl::encode_tokens(const torch::Tensor& tokens, const AttentionMask& mask) {
  return forward_blocks(blocks_, tokens, norm_, mask);
}

torch::Tensor VisionTransformerImpl::forward_features(const torch::Tensor& images) {
  return forward_tokens(patch_embed_(images));
}

torch::Tensor VisionTransformerImpl::forward_head(const torch::Tensor& features) {
  if (options_.distilled) {
    if (head_.is_empty()) return (features.select(1, 0) + features.select(1, 1)) / 2.0;
    const auto heads = distilled_heads(head_, head_dist_, features);
    return (heads.logits + heads.distillation_logits) / 2.0;
  }
  torch::Tensor pooled;
  switch (options_.pool) {
    case PoolKind::Cls:
      pooled = features.select(1, 0);
      break;
    case PoolKind::Mean:
      pooled = features.slice(1, 1).mean(1);
      break;
    case PoolKind::Avg:
      pooled = fc_norm_(features.slice(1, 1).mean(1));
      break;
  }
  return head_.is_empty() ? pooled : head_(pooled);
}

torch::Tensor VisionTransformerImpl::features_for_head(const torch::Tensor& images) {
  if (!head_reads_special_tokens_only()) return forward_features(images);
  return forward_blocks_to_first_tokens(blocks_, embed(patch_embed_(images)), norm_, options_.num_prefix_tokens());
}

torch::Tensor VisionTransformerImpl::forward(const torch::Tensor& images) {
  return forward_head(features_for_head(images));
}

ImageModelImpl::TrainingOutputs VisionTransformerImpl::forward_train(const torch::Tensor& images) {
  if (!options_.distilled || head_.is_empty()) return ImageModelImpl::forward_train(images);
  return distilled_heads(head_, head_dist_, features_for_head(images));
}

std::vector<torch::Tensor> VisionTransformerImpl::attention_maps(const torch::Tensor& images) {
  std::vector<torch::Tensor> maps;
  auto x = embed(patch_embed_(images));
  for (auto& block : blocks_) {
    auto [next, weights] = block->forward_with_attention(x);
    maps.push_back(weights);
    x = next;
  }
  return maps;
}

bool VisionTransformerImpl::decays(const std::string& name, const torch::Tensor& parameter) const {
  return parameter.dim() > 1 && name != "pos_embed" && name != "cls_token" && name != "dist_token";
}

bool VisionTransformerImpl::in_head(const std::string& name) const {
  return ImageModelImpl::in_head(name) || name.rfind("head_dist.", 0) == 0;
}

int64_t VisionTransformerImpl::layer_of(const std::string& name) const {
  const auto starts = [&](const char* prefix) { return name.rfind(prefix, 0) == 0; };
  if (starts("blocks.")) return std::stoll(name.substr(std::string("blocks.").size())) + 1;
  if (starts("cls_token") || starts("dist_token") || starts("pos_embed") || starts("patch_embed.")) return 0;
  return layer_count();
}

BlockOptions VisionTransformerImpl::block_options(double drop_path) const {
  const auto& o = options_;
  return {o.embed_dim, o.num_heads,      o.mlp_ratio, o.qkv_bias,
          o.drop_rate, o.attn_drop_rate, drop_path,   o.layer_scale_init};
}

int64_t VisionTransformerImpl::macs(const std::string& part) const {
  const auto& o = options_;
  if (part == "patch_embed") return o.num_patches() * o.embed_dim * o.in_chans * o.patch_size * o.patch_size;
  if (part.rfind("blocks.", 0) == 0) return block_macs(block_options(0.0), o.num_tokens());
  if (part == "head" || part == "head_dist") return o.embed_dim * o.num_classes;
  return 0;
}

bool VisionTransformerImpl::head_reads_special_tokens_only() const {
  return options_.distilled || options_.pool == PoolKind::Cls;
}

int64_t VisionTransformerImpl::executed_macs(const std::string& part) const {
  const auto& o = options_;
  if (!head_reads_special_tokens_only() || part != "blocks." + std::to_string(o.depth - 1)) return macs(part);
  return block_macs(block_options(0.0), o.num_tokens(), o.num_prefix_tokens());
}

int64_t VisionTransformerImpl::activation_bytes() const {
  const auto& o = options_;
  const int64_t n = o.num_tokens();
  const int64_t embedding = o.in_chans * o.image_size * o.image_size + 2 * n * o.embed_dim;
  return static_cast<int64_t>(sizeof(float)) *
         (embedding + (o.depth + 1) * block_activation_floats(block_options(0.0), n));
}

}  // namespace vit::models
