#include "app/model_json.h"

#include "app/config_names.h"
#include "models/presets.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace vit::app {

nlohmann::json model_json(const ModelConfig& model) {
  const auto& o = model.options;
  return {{"preset", model.preset},
          {"image_size", o.image_size},
          {"patch_size", o.patch_size},
          {"in_chans", o.in_chans},
          {"num_classes", o.num_classes},
          {"dim", o.embed_dim},
          {"depth", o.depth},
          {"heads", o.num_heads},
          {"mlp_ratio", o.mlp_ratio},
          {"qkv_bias", o.qkv_bias},
          {"pos_embed", name_of(kPosEmbedNames, o.pos_embed)},
          {"pool", name_of(kPoolNames, o.pool)}};
}

std::string describe_model(const ModelConfig& model) {
  if (model.preset.empty()) return "custom";
  ModelConfig as_published;
  as_published.preset = model.preset;
  as_published.options = models::preset(model.preset);
  const auto ours = model_json(model);
  const auto published = model_json(as_published);
  std::vector<std::string> changed;
  for (const auto& [key, value] : ours.items()) {
    if (published[key] != value) changed.push_back(key);
  }
  if (changed.empty()) return model.preset;
  return fmt::format("custom ({} with {} changed)", model.preset, fmt::join(changed, ", "));
}

}  // namespace vit::app
