#include "app/model_json.h"

#include "app/config_names.h"

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

}  // namespace vit::app
