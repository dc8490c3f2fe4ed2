#include "models/vit/vit_architecture.h"

#include "models/vit/presets.h"
#include "models/vit/vision_transformer.h"
#include "models/vit/vit_import.h"

#include <algorithm>
#include <limits>

namespace vit::models {
namespace {

// A member of the ViT options that `access` reaches inside a ModelOptions.
template <typename T>
auto member_of(const VitAccess& access, T VitOptions::*member) {
  return [access, member](ModelOptions& options) -> T& { return access(options).*member; };
}

}  // namespace

std::vector<OptionField> vit_option_fields(const VitAccess& access, bool classifier) {
  constexpr int64_t kMaxSide = 65536;
  const auto option = [&](auto member) { return member_of(access, member); };
  auto fields =
      FieldList<ModelOptions>()
          .integer("image_size", option(&VitOptions::image_size), 1, kMaxSide, "input side in pixels (square)")
          .integer("patch_size", option(&VitOptions::patch_size), 1, kMaxSide, "side of the square patches")
          .integer("in_chans", option(&VitOptions::in_chans), 1, 64, "image channels")
          .integer("num_classes", option(&VitOptions::num_classes), 0, std::numeric_limits<int32_t>::max(),
                   "0: no head, the model returns pooled features")
          .integer("dim", option(&VitOptions::embed_dim), 1, kMaxSide, "token width")
          .integer("depth", option(&VitOptions::depth), 1, 1024, "encoder blocks")
          .integer("heads", option(&VitOptions::num_heads), 1, 1024, "attention heads per block")
          .real("mlp_ratio", option(&VitOptions::mlp_ratio), 1e-3, 64.0, "MLP hidden width / dim")
          .flag("qkv_bias", option(&VitOptions::qkv_bias), "bias in the query/key/value projection")
          .choice("pos_embed", option(&VitOptions::pos_embed), kPosEmbedNames,
                  "learned | sincos (2-D, fixed) | sinusoid (1-D, fixed) | none")
          .choice(
              "pool", option(&VitOptions::pool), kPoolNames,
              "cls | mean (of the final-norm patch tokens) | avg (timm's global_pool='avg': fc_norm after the mean)")
          .real("dropout", option(&VitOptions::drop_rate), 0.0, 0.999,
                "after the positional embedding, in the MLP and projections")
          .training_only()
          .real("attn_dropout", option(&VitOptions::attn_drop_rate), 0.0, 0.999, "on the attention weights")
          .training_only()
          .real("drop_path", option(&VitOptions::drop_path_rate), 0.0, 0.999,
                "stochastic depth, rising linearly over the blocks")
          .training_only()
          .real("layer_scale", option(&VitOptions::layer_scale_init), 0.0, 1e3,
                "LayerScale initial value; 0 disables it")
          .flag("distilled", option(&VitOptions::distilled),
                "DeiT: a distillation token and head_dist; inference averages both heads")
          .fields();
  if (!classifier) {
    // An encoder without a head of its own (MAE's): no classes, pooling or distillation token.
    fields.erase(std::remove_if(fields.begin(), fields.end(),
                                [](const OptionField& field) {
                                  return field.key == "num_classes" || field.key == "pool" || field.key == "distilled";
                                }),
                 fields.end());
  }
  return fields;
}

namespace {

class VitArchitecture final : public Architecture {
 public:
  std::string name() const override { return kVitArch; }
  std::string summary() const override { return "Vision Transformer (Dosovitskiy et al., 2021), timm's names"; }
  ModelOptions defaults() const override { return {kVitArch, VitOptions{}}; }
  const std::vector<OptionField>& fields() const override { return fields_; }
  std::vector<std::string> preset_names() const override { return models::preset_names(); }
  ModelOptions preset(const std::string& name) const override { return {kVitArch, models::preset(name)}; }
  void validate(const ModelOptions& options) const override { options.as<VitOptions>().validate(); }
  ModelShape shape(const ModelOptions& options) const override {
    const auto& o = options.as<VitOptions>();
    return {o.image_size, o.in_chans, o.num_classes};
  }
  ImageModel build(const ModelOptions& options) const override {
    return ImageModel(VisionTransformer(options.as<VitOptions>()).ptr());
  }
  ImportedModel import_weights(NamedTensors weights, const ImportRequest& request) const override {
    return import_vit_weights(std::move(weights), request);
  }

 private:
  std::vector<OptionField> fields_ =
      vit_option_fields([](ModelOptions& options) -> VitOptions& { return options.as<VitOptions>(); }, true);
};

}  // namespace

std::unique_ptr<Architecture> make_vit_architecture() { return std::make_unique<VitArchitecture>(); }

}  // namespace vit::models
