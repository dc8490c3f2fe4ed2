#include "models/vit/vit_import.h"

#include "models/vit/presets.h"
#include "models/vit/vision_transformer.h"

#include <torch/nn/functional/upsampling.h>

#include <fmt/format.h>

#include <cmath>
#include <regex>
#include <set>

namespace vit::models {
namespace {

// torchvision.models.VisionTransformer's names -> timm's. Older torchvision releases called the
// MLP layers linear_1/linear_2 instead of 0/3.
const std::vector<std::pair<std::regex, std::string>>& torchvision_renames() {
  static const std::vector<std::pair<std::regex, std::string>> renames = {
      {std::regex(R"(^class_token$)"), "cls_token"},
      {std::regex(R"(^conv_proj\.)"), "patch_embed.proj."},
      {std::regex(R"(^encoder\.pos_embedding$)"), "pos_embed"},
      {std::regex(R"(^encoder\.ln\.)"), "norm."},
      {std::regex(R"(^heads\.head\.)"), "head."},
      {std::regex(R"(^encoder\.layers\.encoder_layer_(\d+)\.ln_1\.)"), "blocks.$1.norm1."},
      {std::regex(R"(^encoder\.layers\.encoder_layer_(\d+)\.ln_2\.)"), "blocks.$1.norm2."},
      {std::regex(R"(^encoder\.layers\.encoder_layer_(\d+)\.self_attention\.in_proj_weight$)"),
       "blocks.$1.attn.qkv.weight"},
      {std::regex(R"(^encoder\.layers\.encoder_layer_(\d+)\.self_attention\.in_proj_bias$)"),
       "blocks.$1.attn.qkv.bias"},
      {std::regex(R"(^encoder\.layers\.encoder_layer_(\d+)\.self_attention\.out_proj\.)"), "blocks.$1.attn.proj."},
      {std::regex(R"(^encoder\.layers\.encoder_layer_(\d+)\.mlp\.(0|linear_1)\.)"), "blocks.$1.mlp.fc1."},
      {std::regex(R"(^encoder\.layers\.encoder_layer_(\d+)\.mlp\.(3|linear_2)\.)"), "blocks.$1.mlp.fc2."},
  };
  return renames;
}

// The side of the patch grid of a [1, extra + grid^2, D] positional embedding.
int64_t pos_embed_grid(const torch::Tensor& pos_embed, int64_t extra) {
  const int64_t positions = pos_embed.dim() == 3 ? pos_embed.size(1) - extra : -1;
  const auto grid = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(std::max<int64_t>(positions, 0)))));
  if (positions <= 0 || grid * grid != positions) {
    throw WeightsError(fmt::format(
        "pos_embed has shape {}: after {} special token{} (class{}) its {} positions are "
        "not a square patch grid",
        fmt::join(pos_embed.sizes(), "x"), extra, extra > 1 ? "s" : "", extra > 1 ? ", distillation" : "", positions));
  }
  return grid;
}

// The architecture the file declares, the preset, or what the tensors describe: width, depth,
// patch size, channels, MLP ratio, qkv bias, classes and the image size of the positional
// embedding's grid. The shapes are checked against it when the weights are copied.
VitOptions options_from_shapes(const NamedTensors& weights, const ImportRequest& options) {
  if (options.declared) {
    if (options.declared->arch() != kVitArch) {
      throw std::invalid_argument("the file holds a " + options.declared->arch() + " model, not a " + kVitArch);
    }
    return options.declared->as<VitOptions>();
  }
  VitOptions vit = options.preset.empty() ? VitOptions{} : preset(options.preset);
  const auto& patch = tensor_named(weights, "patch_embed.proj.weight");  // [D, C, P, P]
  if (patch.dim() != 4 || patch.size(2) != patch.size(3)) {
    throw WeightsError(fmt::format("patch_embed.proj.weight has shape {}, expected [dim, channels, P, P]",
                                   fmt::join(patch.sizes(), "x")));
  }
  if (!options.preset.empty()) return vit;
  vit.embed_dim = patch.size(0);
  vit.in_chans = patch.size(1);
  vit.patch_size = patch.size(2);
  vit.depth = 0;
  while (weights.count(fmt::format("blocks.{}.norm1.weight", vit.depth)) > 0) ++vit.depth;
  vit.num_heads = options.num_heads.value_or(std::max<int64_t>(1, vit.embed_dim / 64));
  vit.mlp_ratio = static_cast<double>(tensor_named(weights, "blocks.0.mlp.fc1.weight").size(0)) /
                  static_cast<double>(vit.embed_dim);
  vit.qkv_bias = weights.count("blocks.0.attn.qkv.bias") > 0;
  // LayerScale (timm's init_values: CaiT, DeiT III): the initial value only matters before the
  // weights replace it; 1e-5 is timm's usual one.
  if (weights.count("blocks.0.ls1.gamma") > 0) vit.layer_scale_init = 1e-5;
  vit.distilled = weights.count("dist_token") > 0;
  vit.num_classes = weights.count("head.weight") > 0 ? weights.at("head.weight").size(0) : 0;
  // timm's global_pool='avg' (MAE's fine-tuned models) normalizes after pooling, in fc_norm.
  if (weights.count("fc_norm.weight") > 0) vit.pool = PoolKind::Avg;
  if (weights.count("pos_embed") > 0) {
    vit.image_size = pos_embed_grid(weights.at("pos_embed"), vit.num_prefix_tokens()) * vit.patch_size;
    vit.pos_embed = PosEmbedKind::Learned;
  }
  return vit;
}

// DeiT's distillation token must be in both the weights and the model, or in neither.
void check_distillation_token(const NamedTensors& weights, const VitOptions& vit, const ImportRequest& request) {
  const bool in_weights = weights.count("dist_token") > 0;
  if (in_weights == vit.distilled) return;
  const std::string model = request.preset.empty() ? "the model the file declares" : "preset " + request.preset;
  throw WeightsError(in_weights ? fmt::format("the weights are a distilled DeiT (they hold dist_token) but {} has no "
                                              "distillation token; choose a *_distilled preset",
                                              model)
                                : fmt::format("{} is distilled but the weights hold no dist_token", model));
}

}  // namespace

NamedTensors to_timm_names(NamedTensors weights, WeightLayout layout) {
  if (layout != WeightLayout::Torchvision) return weights;
  NamedTensors renamed;
  for (auto& [name, tensor] : weights) {
    std::string target = name;
    for (const auto& [pattern, replacement] : torchvision_renames()) {
      if (std::regex_search(name, pattern)) {
        target = std::regex_replace(name, pattern, replacement, std::regex_constants::format_first_only);
        break;
      }
    }
    renamed[target] = std::move(tensor);
  }
  return renamed;
}

torch::Tensor resample_pos_embed(const torch::Tensor& pos_embed, int64_t new_grid, int64_t extra) {
  const int64_t old_grid = pos_embed_grid(pos_embed, extra);
  const int64_t old_positions = old_grid * old_grid;
  if (old_grid == new_grid) return pos_embed;
  const int64_t dim = pos_embed.size(2);
  const auto grid = pos_embed.narrow(1, extra, old_positions).to(torch::kFloat32).reshape({1, old_grid, old_grid, dim});
  const auto resized =
      torch::nn::functional::interpolate(grid.permute({0, 3, 1, 2}), torch::nn::functional::InterpolateFuncOptions()
                                                                         .size(std::vector<int64_t>{new_grid, new_grid})
                                                                         .mode(torch::kBicubic)
                                                                         .align_corners(false));
  const auto patches = resized.permute({0, 2, 3, 1}).reshape({1, new_grid * new_grid, dim});
  return torch::cat({pos_embed.narrow(1, 0, extra).to(torch::kFloat32), patches}, 1);
}

ImportedModel import_vit_weights(NamedTensors weights, const ImportRequest& options) {
  weights = to_timm_names(std::move(weights), options.layout);
  ImportedModel imported;
  auto vit = options_from_shapes(weights, options);
  check_distillation_token(weights, vit, options);

  if (options.window_size) throw std::invalid_argument("--window-size: a ViT has no attention windows");
  if (options.image_size && *options.image_size != vit.image_size) {
    if (*options.image_size % vit.patch_size != 0) {
      throw std::invalid_argument(fmt::format("--image-size {}: not a multiple of the weights' patch size {}",
                                              *options.image_size, vit.patch_size));
    }
    const int64_t old_size = vit.image_size;
    vit.image_size = *options.image_size;
    if (weights.count("pos_embed") > 0) {
      weights["pos_embed"] = resample_pos_embed(weights.at("pos_embed"), vit.grid_size(), vit.num_prefix_tokens());
      imported.notes.push_back(fmt::format("positional embedding resampled bicubically from {0}x{0} to {1}x{1} patches",
                                           old_size / vit.patch_size, vit.grid_size()));
    }
  }
  // MAE's pretraining files (the official ones, and timm's *.mae) may keep the decoder: the
  // encoder is what a classifier starts from.
  std::vector<std::string> decoder;
  for (const auto& [name, tensor] : weights) {
    if (name.rfind("decoder_", 0) == 0 || name == "mask_token") decoder.push_back(name);
  }
  for (const auto& name : decoder) weights.erase(name);
  if (!decoder.empty()) {
    imported.notes.push_back(fmt::format("MAE decoder dropped ({} tensors): the encoder is imported", decoder.size()));
  }
  std::set<std::string> fresh;  // parameters that keep their new initialisation
  if (options.num_classes && *options.num_classes != vit.num_classes) {
    imported.notes.push_back(
        fmt::format("new head for {} classes (the weights had {})", *options.num_classes, vit.num_classes));
    vit.num_classes = *options.num_classes;
    fresh = {"head.weight", "head.bias", "head_dist.weight", "head_dist.bias"};
    for (const auto& name : fresh) weights.erase(name);
  }
  try {
    vit.validate();
  } catch (const std::invalid_argument& error) {
    throw std::invalid_argument(std::string("the imported architecture is inconsistent: ") + error.what());
  }

  imported.options = ModelOptions(kVitArch, vit);
  imported.model = ImageModel(VisionTransformer(vit).ptr());
  copy_weights(*imported.model, weights, fresh);
  return imported;
}

}  // namespace vit::models
