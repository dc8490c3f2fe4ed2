#include "models/mae/mae_architecture.h"

#include "models/core/preset_table.h"
#include "models/mae/masked_autoencoder.h"
#include "models/vit/presets.h"
#include "models/vit/vit_architecture.h"

#include <map>

namespace vit::models {
namespace {

std::vector<OptionField> mae_fields() {
  auto fields = vit_option_fields([](ModelOptions& options) -> VitOptions& { return options.as<MaeOptions>().encoder; },
                                  /*classifier=*/false);
  const auto decoder =
      FieldList<ModelOptions>()
          .integer("decoder_dim", option(&MaeOptions::decoder_dim), 4, 65536, "decoder token width")
          .integer("decoder_depth", option(&MaeOptions::decoder_depth), 1, 1024, "decoder blocks")
          .integer("decoder_heads", option(&MaeOptions::decoder_heads), 1, 1024, "attention heads per decoder block")
          .real("mask_ratio", option(&MaeOptions::mask_ratio), 0.01, 0.99,
                "share of each image's patches hidden from the encoder")
          .training_only()
          .flag("norm_pix_loss", option(&MaeOptions::norm_pix_loss),
                "targets: each patch normalized by its own pixels' mean and variance")
          .fields();
  fields.insert(fields.end(), decoder.begin(), decoder.end());
  return fields;
}

// The official base and large models (mae_vit_{base,large}_patch16: a 512-wide, 8-block decoder)
// and one for 28x28 greyscale images with the default config's encoder size and 4-pixel patches.
MaeOptions official(const std::string& encoder_preset, int64_t patch_size) {
  MaeOptions options;
  const auto vit = preset(encoder_preset);
  options.encoder.patch_size = patch_size;
  options.encoder.embed_dim = vit.embed_dim;
  options.encoder.depth = vit.depth;
  options.encoder.num_heads = vit.num_heads;
  return options;
}

const std::map<std::string, MaeOptions>& mae_presets() {
  static const std::map<std::string, MaeOptions> presets = [] {
    std::map<std::string, MaeOptions> known;
    known["mae_vit_base_patch16"] = official("vit_base_patch16_224", 16);
    known["mae_vit_large_patch16"] = official("vit_large_patch16_224", 16);
    MaeOptions small;
    small.encoder.image_size = 28;
    small.encoder.patch_size = 4;
    small.encoder.in_chans = 1;
    small.encoder.embed_dim = 128;
    small.encoder.depth = 6;
    small.encoder.num_heads = 4;
    small.encoder.mlp_ratio = 2.0;
    small.decoder_dim = 64;
    small.decoder_depth = 2;
    small.decoder_heads = 4;
    small.norm_pix_loss = true;
    known["mae_vit_fashion_patch4"] = small;
    return known;
  }();
  return presets;
}

class MaeArchitecture final : public Architecture {
 public:
  std::string name() const override { return kMaeArch; }
  std::string summary() const override {
    return "Masked autoencoder (He et al., 2022): self-supervised pretraining of a ViT encoder";
  }
  ModelOptions defaults() const override { return {kMaeArch, MaeOptions{}}; }
  const std::vector<OptionField>& fields() const override { return fields_; }
  std::vector<std::string> preset_names() const override { return preset_names_in(mae_presets()); }
  ModelOptions preset(const std::string& name) const override {
    return {kMaeArch, preset_in(mae_presets(), name, "MAE")};
  }
  void validate(const ModelOptions& options) const override { options.as<MaeOptions>().validate(); }
  ModelShape shape(const ModelOptions& options) const override {
    const auto& encoder = options.as<MaeOptions>().encoder;
    return {encoder.image_size, encoder.in_chans, 0};
  }
  Objective objective() const override { return Objective::MaskedImageModeling; }
  ImageModel build(const ModelOptions& options) const override {
    return ImageModel(MaskedAutoencoder(options.as<MaeOptions>()).ptr());
  }

 private:
  std::vector<OptionField> fields_ = mae_fields();
};

}  // namespace

std::unique_ptr<Architecture> make_mae_architecture() { return std::make_unique<MaeArchitecture>(); }

}  // namespace vit::models
