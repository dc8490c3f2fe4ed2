#include "models/swin/swin_architecture.h"

#include "models/core/preset_table.h"

#include "models/swin/swin_import.h"
#include "models/swin/swin_transformer.h"

#include <limits>
#include <map>

namespace vit::models {
namespace {

std::vector<OptionField> swin_fields() {
  constexpr int64_t kMaxSide = 65536;
  return FieldList<ModelOptions>()
      .integer("image_size", option(&SwinOptions::image_size), 1, kMaxSide, "input side in pixels (square)")
      .integer("patch_size", option(&SwinOptions::patch_size), 1, kMaxSide, "side of the square patches")
      .integer("in_chans", option(&SwinOptions::in_chans), 1, 64, "image channels")
      .integer("num_classes", option(&SwinOptions::num_classes), 0, std::numeric_limits<int32_t>::max(),
               "0: no head, the model returns pooled features")
      .integer("dim", option(&SwinOptions::embed_dim), 1, kMaxSide, "the first stage's width; each merge doubles it")
      .integers("depths", option(&SwinOptions::depths), 1, 1024, "blocks per stage, e.g. [2, 2, 6, 2]")
      .integers("heads", option(&SwinOptions::num_heads), 1, 1024, "attention heads per stage, e.g. [3, 6, 12, 24]")
      .integer("window_size", option(&SwinOptions::window_size), 1, 1024,
               "side of the attention windows; each stage's map must be a multiple of it (or fit in one)")
      .real("mlp_ratio", option(&SwinOptions::mlp_ratio), 1e-3, 64.0, "MLP hidden width / the stage's width")
      .flag("qkv_bias", option(&SwinOptions::qkv_bias), "bias in the query/key/value projection")
      .real("dropout", option(&SwinOptions::drop_rate), 0.0, 0.999, "in the MLP and after the attention projection")
      .training_only()
      .real("attn_dropout", option(&SwinOptions::attn_drop_rate), 0.0, 0.999, "on the attention weights")
      .training_only()
      .real("drop_path", option(&SwinOptions::drop_path_rate), 0.0, 0.999,
            "stochastic depth, rising linearly over all blocks of all stages")
      .training_only()
      .fields();
}

SwinOptions imagenet(int64_t embed_dim, std::vector<int64_t> depths, std::vector<int64_t> num_heads) {
  SwinOptions options;
  options.embed_dim = embed_dim;
  options.depths = std::move(depths);
  options.num_heads = std::move(num_heads);
  return options;
}

// 2-pixel patches, two or three stages, 10 classes: small enough to train on a 2-core CPU.
SwinOptions small_image(int64_t image_size, int64_t in_chans, int64_t window_size, std::vector<int64_t> depths,
                        std::vector<int64_t> num_heads) {
  SwinOptions options;
  options.image_size = image_size;
  options.patch_size = 2;
  options.in_chans = in_chans;
  options.num_classes = 10;
  options.embed_dim = 32;
  options.window_size = window_size;
  options.depths = std::move(depths);
  options.num_heads = std::move(num_heads);
  return options;
}

const std::map<std::string, SwinOptions>& presets() {
  static const std::map<std::string, SwinOptions> known = {
      {"swin_tiny_patch4_window7_224", imagenet(96, {2, 2, 6, 2}, {3, 6, 12, 24})},
      {"swin_small_patch4_window7_224", imagenet(96, {2, 2, 18, 2}, {3, 6, 12, 24})},
      {"swin_base_patch4_window7_224", imagenet(128, {2, 2, 18, 2}, {4, 8, 16, 32})},
      // 28x28 greyscale: 14x14 patches in 2x2 windows of 7, then one 7x7 window.
      {"swin_micro_patch2_window7_28", small_image(28, 1, 7, {2, 4}, {2, 4})},
      // 32x32 RGB: 16x16 patches in windows of 4, then 8x8, then one 4x4 window.
      {"swin_micro_patch2_window4_32", small_image(32, 3, 4, {2, 2, 2}, {2, 4, 8})},
  };
  return known;
}

class SwinArchitecture final : public Architecture {
 public:
  std::string name() const override { return kSwinArch; }
  std::string summary() const override {
    return "Swin Transformer (Liu et al., 2021): shifted-window attention in stages, timm's names";
  }
  ModelOptions defaults() const override { return {kSwinArch, SwinOptions{}}; }
  const std::vector<OptionField>& fields() const override { return fields_; }
  std::vector<std::string> preset_names() const override { return preset_names_in(presets()); }
  ModelOptions preset(const std::string& name) const override { return {kSwinArch, swin_preset(name)}; }
  void validate(const ModelOptions& options) const override { options.as<SwinOptions>().validate(); }
  ModelShape shape(const ModelOptions& options) const override {
    const auto& o = options.as<SwinOptions>();
    return {o.image_size, o.in_chans, o.num_classes};
  }
  ImageModel build(const ModelOptions& options) const override {
    return ImageModel(SwinTransformer(options.as<SwinOptions>()).ptr());
  }
  ImportedModel import_weights(NamedTensors weights, const ImportRequest& request) const override {
    return import_swin_weights(std::move(weights), request);
  }

 private:
  std::vector<OptionField> fields_ = swin_fields();
};

}  // namespace

SwinOptions swin_preset(const std::string& name) { return preset_in(presets(), name, "Swin"); }

std::unique_ptr<Architecture> make_swin_architecture() { return std::make_unique<SwinArchitecture>(); }

}  // namespace vit::models
