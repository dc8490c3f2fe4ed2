#include "app/config_names.h"
#include "app/config_sections.h"
#include "models/presets.h"

#include <limits>
#include <stdexcept>

namespace vit::app {

ModelConfig read_model(YamlSection section) {
  ModelConfig model;
  if (section.read("preset", model.preset)) {
    try {
      model.options = models::preset(model.preset);
    } catch (const std::invalid_argument& error) {
      section.fail("preset", error.what());
    }
  }
  auto& o = model.options;
  section.read_int("image_size", o.image_size, 1, 65536);
  section.read_int("patch_size", o.patch_size, 1, 65536);
  section.read_int("in_chans", o.in_chans, 1, 64);
  section.read_int("num_classes", o.num_classes, 0, std::numeric_limits<int32_t>::max());
  section.read_int("dim", o.embed_dim, 1, 65536);
  section.read_int("depth", o.depth, 1, 1024);
  section.read_int("heads", o.num_heads, 1, 1024);
  section.read_double("mlp_ratio", o.mlp_ratio, 1e-3, 64.0);
  section.read("qkv_bias", o.qkv_bias);
  section.read_choice("pos_embed", o.pos_embed, kPosEmbedNames);
  section.read_choice("pool", o.pool, kPoolNames);
  section.read_double("dropout", o.drop_rate, 0.0, 0.999);
  section.read_double("attn_dropout", o.attn_drop_rate, 0.0, 0.999);
  section.read_double("drop_path", o.drop_path_rate, 0.0, 0.999);
  section.read_double("layer_scale", o.layer_scale_init, 0.0, 1e3);
  section.read("pretrained", model.pretrained);
  section.finish();
  try {
    o.validate();
  } catch (const std::invalid_argument& error) {
    section.fail("", error.what());
  }
  return model;
}

}  // namespace vit::app
