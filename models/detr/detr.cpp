#include "models/detr/detr.h"

#include "models/layers/init.h"
#include "models/layers/pos_embed.h"

#include <torch/nn/modules/activation.h>

namespace vit::models {
namespace {

constexpr const char* kDetrParts[] = {"encoder.",        "encoder_norm.", "query_embed",  "query_anchor",
                                      "decoder_blocks.", "decoder_norm.", "class_embed.", "bbox_embed."};

}  // namespace

DetrImpl::DetrImpl(const DetrOptions& options)
    : VisionTransformerImpl(options.backbone), detr_(options), model_options_(kDetrArch, options) {
  options.validate();
  const int64_t dim = options.dim();
  encoder_list_ = register_module("encoder", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.encoder_depth; ++i) {
    encoder_blocks_.emplace_back(block_options(0.0));
    encoder_list_->push_back(encoder_blocks_.back());
  }
  if (options.encoder_depth > 0) encoder_norm_ = register_module("encoder_norm", vit_layer_norm(dim));
  memory_pos_ = register_buffer("memory_pos", sincos_2d(options.backbone.grid_size(), dim).unsqueeze(0));
  query_embed_ = register_parameter("query_embed", torch::randn({options.num_queries, dim}));
  if (options.anchor_queries) {
    // Reference points spread uniformly over the image, kept away from the edges where the
    // sigmoid saturates.
    const auto points = torch::rand({options.num_queries, 2}) * 0.9 + 0.05;
    query_anchor_ = register_parameter("query_anchor", torch::log(points / (1.0 - points)));
  }
  decoder_list_ = register_module("decoder_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.decoder_depth; ++i) {
    decoder_blocks_.emplace_back(decoder_block_options());
    decoder_list_->push_back(decoder_blocks_.back());
  }
  decoder_norm_ = register_module("decoder_norm", vit_layer_norm(dim));
  class_embed_ = register_module("class_embed", Linear(dim, options.num_classes + 1));
  bbox_embed_ = register_module(
      "bbox_embed",
      torch::nn::Sequential(Linear(dim, dim), torch::nn::ReLU(), Linear(dim, dim), torch::nn::ReLU(), Linear(dim, 4)));
  init_linear_layers(*encoder_list_, kInitStd);
  init_linear_layers(*decoder_list_, kInitStd);
  init_linear_layers(*class_embed_, kInitStd);
  init_linear_layers(*bbox_embed_, kInitStd);
}

DecoderBlockOptions DetrImpl::decoder_block_options() const {
  const auto& backbone = detr_.backbone;
  return {detr_.dim(), detr_.decoder_heads, backbone.mlp_ratio, backbone.drop_rate, backbone.attn_drop_rate};
}

torch::Tensor DetrImpl::encode(const torch::Tensor& images) {
  auto tokens = forward_features(images).slice(1, detr_.backbone.num_prefix_tokens());
  if (encoder_blocks_.empty()) return tokens;
  return forward_blocks(encoder_blocks_, tokens, encoder_norm_);
}

torch::Tensor DetrImpl::decode(const torch::Tensor& memory) {
  const auto queries = query_positions();
  // Zeros [B, Q, D] with B taken from the memory, so that a traced export keeps the batch symbolic.
  auto x = torch::zeros_like(memory.narrow(1, 0, 1), torch::kFloat32).expand({-1, detr_.num_queries, -1});
  std::vector<torch::Tensor> states;
  for (auto& block : decoder_blocks_) {
    x = block(x, queries, memory, memory_pos_);
    states.push_back(decoder_norm_(x));
  }
  return torch::stack(states);
}

torch::Tensor DetrImpl::query_positions() const {
  if (!query_anchor_.defined()) return query_embed_.unsqueeze(0);
  // Patch units: the centre of patch i is at i, the image's edges at -0.5 and grid - 0.5.
  const auto grid = static_cast<double>(detr_.backbone.grid_size());
  const auto points = query_anchor_.sigmoid() * grid - 0.5;
  return (query_embed_ + sincos_2d_at(points, detr_.dim())).unsqueeze(0);
}

DetectionModel::Predictions DetrImpl::heads(const torch::Tensor& states) {
  auto boxes = bbox_embed_->forward(states).to(torch::kFloat32);
  // The points move the centres; widths and heights have no prior (cat rather than pad: ONNX has no
  // export of LibTorch's pad).
  if (query_anchor_.defined()) boxes = boxes + torch::cat({query_anchor_, torch::zeros_like(query_anchor_)}, 1);
  return {class_embed_(states).to(torch::kFloat32), boxes.sigmoid()};
}

std::vector<DetectionModel::Predictions> DetrImpl::detect_per_layer(const torch::Tensor& images) {
  const auto all = heads(decode(encode(images)));
  std::vector<Predictions> layers;
  for (int64_t layer = detr_.decoder_depth - 1; layer >= 0; --layer)
    layers.push_back({all.logits[layer], all.boxes[layer]});
  return layers;
}

DetectionModel::Predictions DetrImpl::detect(const torch::Tensor& images) {
  return heads(decode(encode(images))[detr_.decoder_depth - 1]);
}

torch::Tensor DetrImpl::forward(const torch::Tensor& images) { return detect(images).logits; }

bool DetrImpl::in_head(const std::string& name) const {
  for (const auto* part : kDetrParts) {
    if (name.rfind(part, 0) == 0) return true;
  }
  return false;
}

int64_t DetrImpl::macs(const std::string& part) const {
  const int64_t dim = detr_.dim();
  const int64_t patches = detr_.backbone.num_patches();
  const int64_t queries = detr_.num_queries;
  if (part.rfind("encoder.", 0) == 0) return block_macs(block_options(0.0), patches);
  if (part.rfind("decoder_blocks.", 0) == 0) return decoder_block_macs(decoder_block_options(), queries, patches);
  // The heads see every decoder block's output (auxiliary predictions).
  if (part == "class_embed") return detr_.decoder_depth * queries * dim * (detr_.num_classes + 1);
  if (part == "bbox_embed") return detr_.decoder_depth * queries * (2 * dim * dim + 4 * dim);
  return VisionTransformerImpl::macs(part);
}

int64_t DetrImpl::activation_bytes() const {
  const int64_t dim = detr_.dim();
  const int64_t patches = detr_.backbone.num_patches();
  const int64_t queries = detr_.num_queries;
  const auto decoder = decoder_block_options();
  const int64_t hidden = static_cast<int64_t>(static_cast<double>(dim) * decoder.mlp_ratio);
  // Per decoder block: ~12 [Q, D] states, the keys and values of the memory, both attentions'
  // weights and the MLP's hidden activations.
  const int64_t decoder_floats =
      12 * queries * dim + 2 * patches * dim + decoder.num_heads * queries * (queries + patches) + 2 * queries * hidden;
  const int64_t encoder_floats = detr_.encoder_depth * block_activation_floats(block_options(0.0), patches);
  return VisionTransformerImpl::activation_bytes() +
         static_cast<int64_t>(sizeof(float)) * (encoder_floats + detr_.decoder_depth * decoder_floats);
}

}  // namespace vit::models
