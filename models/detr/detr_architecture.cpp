#include "models/detr/detr_architecture.h"

#include "models/core/preset_table.h"
#include "models/detr/detr.h"
#include "models/vit/presets.h"
#include "models/vit/vit_architecture.h"

#include <limits>
#include <map>

namespace vit::models {
namespace {

std::vector<OptionField> detr_fields() {
  auto fields = vit_option_fields(
      [](ModelOptions& options) -> VitOptions& { return options.as<DetrOptions>().backbone; }, /*classifier=*/false);
  const auto detector =
      FieldList<ModelOptions>()
          .integer("num_classes", option(&DetrOptions::num_classes), 1, std::numeric_limits<int32_t>::max(),
                   "object classes (the no-object class comes on top)")
          .integer("num_queries", option(&DetrOptions::num_queries), 1, 65536,
                   "learned object queries: the most objects one image can have detected")
          .integer("encoder_depth", option(&DetrOptions::encoder_depth), 0, 1024,
                   "extra encoder blocks over the backbone's patch tokens")
          .integer("decoder_depth", option(&DetrOptions::decoder_depth), 1, 1024, "decoder blocks")
          .integer("decoder_heads", option(&DetrOptions::decoder_heads), 1, 1024, "attention heads per decoder block")
          .flag("anchor_queries", option(&DetrOptions::anchor_queries),
                "each query owns a learned reference point: boxes as offsets from it, its sin-cos position added to "
                "the query's (anchor DETR); false: DETR's free queries")
          .fields();
  fields.insert(fields.end(), detector.begin(), detector.end());
  return fields;
}

DetrOptions on_backbone(const std::string& backbone_preset, int64_t decoder_heads) {
  DetrOptions options;
  options.backbone = preset(backbone_preset);
  options.backbone.num_classes = 0;
  options.decoder_heads = decoder_heads;
  return options;
}

// DETR's decoder (6 blocks, 100 queries, COCO's 91 class ids) on ViT-Ti/16 and ViT-S/16 at 224 px,
// and a small detector with anchor queries for `vit data synth-detection`'s 64 px shapes task.
const std::map<std::string, DetrOptions>& detr_presets() {
  static const std::map<std::string, DetrOptions> presets = [] {
    std::map<std::string, DetrOptions> known;
    known["detr_vit_tiny_patch16_224"] = on_backbone("vit_tiny_patch16_224", 8);
    known["detr_vit_small_patch16_224"] = on_backbone("vit_small_patch16_224", 8);
    DetrOptions shapes;
    shapes.backbone.image_size = 64;
    shapes.backbone.patch_size = 8;
    shapes.backbone.embed_dim = 128;
    shapes.backbone.depth = 4;
    shapes.backbone.num_heads = 4;
    shapes.backbone.mlp_ratio = 2.0;
    shapes.num_classes = 4;
    shapes.num_queries = 10;
    shapes.decoder_depth = 3;
    shapes.decoder_heads = 4;
    shapes.anchor_queries = true;  // the paper's free queries plateau for long on this task
    known["detr_shapes_64"] = shapes;
    return known;
  }();
  return presets;
}

class DetrArchitecture final : public Architecture {
 public:
  std::string name() const override { return kDetrArch; }
  std::string summary() const override {
    return "DETR (Carion et al., 2020): set-prediction object detection with a ViT backbone";
  }
  ModelOptions defaults() const override { return {kDetrArch, DetrOptions{}}; }
  const std::vector<OptionField>& fields() const override { return fields_; }
  std::vector<std::string> preset_names() const override { return preset_names_in(detr_presets()); }
  ModelOptions preset(const std::string& name) const override {
    return {kDetrArch, preset_in(detr_presets(), name, "DETR")};
  }
  void validate(const ModelOptions& options) const override { options.as<DetrOptions>().validate(); }
  ModelShape shape(const ModelOptions& options) const override {
    const auto& o = options.as<DetrOptions>();
    return {o.backbone.image_size, o.backbone.in_chans, o.num_classes};
  }
  Objective objective() const override { return Objective::Detection; }
  ImageModel build(const ModelOptions& options) const override {
    return ImageModel(Detr(options.as<DetrOptions>()).ptr());
  }

 private:
  std::vector<OptionField> fields_ = detr_fields();
};

}  // namespace

std::unique_ptr<Architecture> make_detr_architecture() { return std::make_unique<DetrArchitecture>(); }

}  // namespace vit::models
