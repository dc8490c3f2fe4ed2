#include "models/vit/presets.h"

#include <map>
#include <stdexcept>

namespace vit::models {
namespace {

VitOptions imagenet(int64_t patch_size, int64_t embed_dim, int64_t depth, int64_t num_heads) {
  VitOptions options;
  options.patch_size = patch_size;
  options.embed_dim = embed_dim;
  options.depth = depth;
  options.num_heads = num_heads;
  return options;
}

// DeiT's distilled variant of a ViT: the same encoder with a distillation token and head.
VitOptions distilled(VitOptions options) {
  options.distilled = true;
  return options;
}

VitOptions small_image(int64_t image_size, int64_t in_chans, int64_t embed_dim, int64_t depth, int64_t num_heads,
                       double mlp_ratio) {
  VitOptions options;
  options.image_size = image_size;
  options.patch_size = 4;
  options.in_chans = in_chans;
  options.num_classes = 10;
  options.embed_dim = embed_dim;
  options.depth = depth;
  options.num_heads = num_heads;
  options.mlp_ratio = mlp_ratio;
  return options;
}

const std::map<std::string, VitOptions>& registry() {
  static const std::map<std::string, VitOptions> presets = {
      {"vit_tiny_patch16_224", imagenet(16, 192, 12, 3)},
      {"vit_small_patch16_224", imagenet(16, 384, 12, 6)},
      {"vit_base_patch16_224", imagenet(16, 768, 12, 12)},
      {"vit_large_patch16_224", imagenet(16, 1024, 24, 16)},
      {"vit_base_patch32_224", imagenet(32, 768, 12, 12)},
      // DeiT (Touvron et al., 2021): plain DeiTs are these ViTs; the distilled ones add the token.
      {"deit_tiny_patch16_224", imagenet(16, 192, 12, 3)},
      {"deit_small_patch16_224", imagenet(16, 384, 12, 6)},
      {"deit_base_patch16_224", imagenet(16, 768, 12, 12)},
      {"deit_tiny_distilled_patch16_224", distilled(imagenet(16, 192, 12, 3))},
      {"deit_small_distilled_patch16_224", distilled(imagenet(16, 384, 12, 6))},
      {"deit_base_distilled_patch16_224", distilled(imagenet(16, 768, 12, 12))},
      // ViT-Ti widths for 28x28 / 32x32 inputs.
      {"vit_tiny_patch4_28", small_image(28, 1, 192, 12, 3, 4.0)},
      {"vit_tiny_patch4_32", small_image(32, 3, 192, 12, 3, 4.0)},
      // Narrow and shallow enough to train to convergence on a 2-core CPU in minutes.
      {"vit_micro_patch4_28", small_image(28, 1, 64, 6, 4, 2.0)},
      {"vit_micro_patch4_32", small_image(32, 3, 64, 6, 4, 2.0)},
  };
  return presets;
}

}  // namespace

VitOptions preset(const std::string& name) {
  const auto& presets = registry();
  if (const auto found = presets.find(name); found != presets.end()) return found->second;
  std::string known;
  for (const auto& [preset_name, options] : presets) known += (known.empty() ? "" : ", ") + preset_name;
  throw std::invalid_argument("unknown model preset '" + name + "' (known: " + known + ")");
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& [name, options] : registry()) names.push_back(name);
  return names;
}

}  // namespace vit::models
