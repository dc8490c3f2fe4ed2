#include "models/swin/swin_import.h"

#include "models/swin/swin_architecture.h"
#include "models/swin/swin_transformer.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <regex>

namespace vit::models {
namespace {

// torchvision's SwinTransformer keeps one flat list `features`: the patch embedding (0: conv,
// 2: norm), then each stage's blocks (odd entries) and the patch merging after it (even ones);
// its MLP layers are 0 and 3, its head `head`.
std::string torchvision_to_timm(const std::string& name) {
  static const std::regex feature(R"(^features\.(\d+)\.(.*)$)");
  static const std::regex block_mlp(R"(^(\d+)\.mlp\.(0|3)\.(.*)$)");
  std::smatch match;
  if (name.rfind("head.", 0) == 0) return "head.fc." + name.substr(5);
  if (!std::regex_match(name, match, feature)) return name;
  const auto index = std::stoll(match[1]);
  const std::string rest = match[2];
  if (index == 0) {
    if (rest.rfind("0.", 0) == 0) return "patch_embed.proj." + rest.substr(2);
    if (rest.rfind("2.", 0) == 0) return "patch_embed.norm." + rest.substr(2);
    return name;
  }
  if (index % 2 == 0) return fmt::format("layers.{}.downsample.{}", index / 2, rest);
  std::smatch mlp;
  if (std::regex_match(rest, mlp, block_mlp)) {
    return fmt::format("layers.{}.blocks.{}.mlp.{}.{}", (index - 1) / 2, mlp[1].str(), mlp[2] == "0" ? "fc1" : "fc2",
                       mlp[3].str());
  }
  return fmt::format("layers.{}.blocks.{}", (index - 1) / 2, rest);
}

// timm < 0.9 and the original code put each stage's patch merging at its end
// (layers.N.downsample for N < last) and the head's weights at head.*; timm >= 0.9 at the start
// of the next stage and at head.fc.*.
std::string original_to_timm(const std::string& name) {
  static const std::regex downsample(R"(^layers\.(\d+)\.downsample\.(.*)$)");
  std::smatch match;
  if (std::regex_match(name, match, downsample)) {
    return fmt::format("layers.{}.downsample.{}", std::stoll(match[1]) + 1, match[2].str());
  }
  if (name == "head.weight" || name == "head.bias") return "head.fc." + name.substr(5);
  return name;
}

bool ends_with(const std::string& name, const std::string& suffix) {
  return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

NamedTensors swin_to_timm_names(NamedTensors weights, WeightLayout layout) {
  if (layout == WeightLayout::Deit) throw std::invalid_argument("DeiT's release files hold no Swin weights");
  if (layout == WeightLayout::Timm && weights.count("features.0.0.weight") > 0) {
    throw WeightsError("the weights use torchvision's names (features.N...): import them with --from torchvision");
  }
  const bool original = layout == WeightLayout::Timm && weights.count("layers.0.downsample.reduction.weight") > 0;
  NamedTensors renamed;
  for (auto& [name, tensor] : weights) {
    // Derived buffers: the model builds its own indices and masks for its windows.
    if (ends_with(name, "relative_position_index") || ends_with(name, "attn_mask")) continue;
    const auto target = layout == WeightLayout::Torchvision ? torchvision_to_timm(name)
                        : original                          ? original_to_timm(name)
                                                            : name;
    renamed[target] = std::move(tensor);
  }
  return renamed;
}

std::string bias_table(int64_t stage, int64_t block) {
  return fmt::format("layers.{}.blocks.{}.attn.relative_position_bias_table", stage, block);
}

// The side of the window of a [(2w-1)^2, heads] bias table.
int64_t table_window(const torch::Tensor& table, const std::string& name) {
  const auto offsets = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(table.size(0)))));
  if (table.dim() != 2 || offsets * offsets != table.size(0) || offsets % 2 == 0) {
    throw WeightsError(
        fmt::format("{} has shape {}, expected [(2 window - 1)^2, heads]", name, fmt::join(table.sizes(), "x")));
  }
  return (offsets + 1) / 2;
}

// What the tensors say: widths, patch, channels, depths, heads and window (from the bias tables),
// MLP ratio, qkv bias and classes. The image size is not in the weights.
SwinOptions options_from_shapes(const NamedTensors& weights, SwinOptions swin) {
  const auto& patch = tensor_named(weights, "patch_embed.proj.weight");  // [D, C, P, P]
  if (patch.dim() != 4 || patch.size(2) != patch.size(3)) {
    throw WeightsError(fmt::format("patch_embed.proj.weight has shape {}, expected [dim, channels, P, P]",
                                   fmt::join(patch.sizes(), "x")));
  }
  swin.embed_dim = patch.size(0);
  swin.in_chans = patch.size(1);
  swin.patch_size = patch.size(2);
  swin.depths.clear();
  swin.num_heads.clear();
  for (int64_t stage = 0; weights.count(fmt::format("layers.{}.blocks.0.norm1.weight", stage)) > 0; ++stage) {
    int64_t depth = 0;
    while (weights.count(fmt::format("layers.{}.blocks.{}.norm1.weight", stage, depth)) > 0) ++depth;
    swin.depths.push_back(depth);
    swin.num_heads.push_back(tensor_named(weights, bias_table(stage, 0)).size(1));
  }
  if (swin.depths.empty()) throw WeightsError("the weights have no 'layers.0.blocks.0.norm1.weight' tensor");
  swin.window_size = table_window(weights.at(bias_table(0, 0)), bias_table(0, 0));
  swin.mlp_ratio = static_cast<double>(tensor_named(weights, "layers.0.blocks.0.mlp.fc1.weight").size(0)) /
                   static_cast<double>(swin.embed_dim);
  swin.qkv_bias = weights.count("layers.0.blocks.0.attn.qkv.bias") > 0;
  swin.num_classes = weights.count("head.fc.weight") > 0 ? weights.at("head.fc.weight").size(0) : 0;
  return swin;
}

SwinOptions requested_options(const NamedTensors& weights, const ImportRequest& request, ImportedModel& imported) {
  if (request.declared) {
    if (request.declared->arch() != kSwinArch) {
      throw std::invalid_argument("the file holds a " + request.declared->arch() + " model, not a " + kSwinArch);
    }
    return request.declared->as<SwinOptions>();
  }
  if (!request.preset.empty()) return swin_preset(request.preset);
  auto swin = options_from_shapes(weights, SwinOptions{});
  if (request.num_heads && *request.num_heads != swin.num_heads.front()) {
    throw std::invalid_argument(fmt::format("--heads {}: the weights' first stage has {} heads (heads per stage [{}])",
                                            *request.num_heads, swin.num_heads.front(),
                                            fmt::join(swin.num_heads, ", ")));
  }
  if (!request.image_size) {
    imported.notes.push_back(
        fmt::format("image size {} (Swin weights do not record it; --image-size sets another)", swin.image_size));
  }
  return swin;
}

}  // namespace

ImportedModel import_swin_weights(NamedTensors weights, const ImportRequest& request) {
  weights = swin_to_timm_names(std::move(weights), request.layout);
  ImportedModel imported;
  auto swin = requested_options(weights, request, imported);
  if (request.image_size) swin.image_size = *request.image_size;
  if (request.window_size) swin.window_size = *request.window_size;
  std::set<std::string> fresh;
  if (request.num_classes && *request.num_classes != swin.num_classes) {
    imported.notes.push_back(
        fmt::format("new head for {} classes (the weights had {})", *request.num_classes, swin.num_classes));
    swin.num_classes = *request.num_classes;
    fresh = {"head.fc.weight", "head.fc.bias"};
  }
  try {
    swin.validate();
  } catch (const std::invalid_argument& error) {
    throw std::invalid_argument(std::string("the imported architecture is inconsistent: ") + error.what());
  }
  imported.options = ModelOptions(kSwinArch, swin);
  imported.model = ImageModel(SwinTransformer(swin).ptr());

  // Bias tables of another window (another --window-size, or a stage whose map the window now
  // covers whole) are resampled as timm does; their heads must agree.
  int64_t resampled = 0;
  for (const auto& item : imported.model->named_parameters()) {
    const auto found = weights.find(item.key());
    const auto& target = item.value();
    if (found == weights.end() || found->second.sizes() == target.sizes() ||
        item.key().find("relative_position_bias_table") == std::string::npos || found->second.dim() != 2 ||
        found->second.size(1) != target.size(1)) {
      continue;
    }
    table_window(found->second, item.key());
    found->second = resample_relative_position_bias_table(found->second, table_window(target, item.key()));
    ++resampled;
  }
  if (resampled > 0) {
    imported.notes.push_back(fmt::format("{} relative position bias tables resampled bicubically to window {}",
                                         resampled, swin.window_size));
  }
  copy_weights(*imported.model, weights, fresh);
  return imported;
}

}  // namespace vit::models
