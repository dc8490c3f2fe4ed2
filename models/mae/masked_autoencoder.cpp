#include "models/mae/masked_autoencoder.h"

#include "models/layers/pos_embed.h"

#include <torch/nn/init.h>

namespace vit::models {
namespace {

constexpr double kNormPixEpsilon = 1e-6;

// Gathers rows [B, K, D] of `tokens` [B, N, D] at `indices` [B, K].
torch::Tensor gather_tokens(const torch::Tensor& tokens, const torch::Tensor& indices) {
  return tokens.gather(1, indices.unsqueeze(-1).expand({-1, -1, tokens.size(2)}));
}

}  // namespace

MaskedAutoencoderImpl::MaskedAutoencoderImpl(const MaeOptions& options)
    : VisionTransformerImpl(options.encoder), mae_(options), model_options_(kMaeArch, options) {
  options.validate();
  const auto& encoder = options.encoder;
  const auto dim = options.decoder_dim;
  mask_token_ = register_parameter("mask_token", torch::zeros({1, 1, dim}));
  decoder_embed_ = register_module("decoder_embed", Linear(encoder.embed_dim, dim));
  decoder_pos_embed_ = register_buffer(
      "decoder_pos_embed", torch::cat({torch::zeros({1, dim}), sincos_2d(encoder.grid_size(), dim)}, 0).unsqueeze(0));
  decoder_block_list_ = register_module("decoder_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.decoder_depth; ++i) {
    decoder_blocks_.emplace_back(decoder_block_options());
    decoder_block_list_->push_back(decoder_blocks_.back());
  }
  decoder_norm_ = register_module("decoder_norm", vit_layer_norm(dim));
  decoder_pred_ = register_module("decoder_pred", Linear(dim, options.patch_pixels()));
  init_mae_weights();
}

BlockOptions MaskedAutoencoderImpl::decoder_block_options() const {
  return {mae_.decoder_dim, mae_.decoder_heads, mae_.encoder.mlp_ratio, /*qkv_bias=*/true};
}

void MaskedAutoencoderImpl::init_mae_weights() {
  // MAE's scheme: Xavier-uniform Linear weights (and the patch projection, seen as a Linear),
  // zero biases, the class and mask tokens normal with std 0.02.
  torch::NoGradGuard no_grad;
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* linear = module->as<torch::nn::LinearImpl>()) {
      torch::nn::init::xavier_uniform_(linear->weight);
      if (linear->bias.defined()) linear->bias.zero_();
    }
  }
  auto projection = named_parameters()["patch_embed.proj.weight"];
  torch::nn::init::xavier_uniform_(projection.view({projection.size(0), -1}));
  cls_token().normal_(0.0, 0.02);
  mask_token_.normal_(0.0, 0.02);
}

MaskedAutoencoderImpl::Masking MaskedAutoencoderImpl::masking(const torch::Tensor& noise) const {
  const int64_t patches = mae_.encoder.num_patches();
  TORCH_CHECK(noise.dim() == 2 && noise.size(1) == patches, "MAE: mask noise must be [B, ", patches, "], got ",
              noise.sizes());
  const int64_t kept = mae_.visible_patches();
  const auto shuffle = noise.argsort(/*dim=*/int64_t{1});
  Masking result;
  result.restore = shuffle.argsort(int64_t{1});
  result.keep = shuffle.narrow(1, 0, kept);
  auto shuffled_mask = torch::ones({noise.size(0), patches}, noise.options().dtype(torch::kFloat32));
  shuffled_mask.narrow(1, 0, kept).zero_();
  result.mask = shuffled_mask.gather(1, result.restore);
  return result;
}

torch::Tensor MaskedAutoencoderImpl::encode(const torch::Tensor& images, const Masking& masking) {
  auto patches = patch_embed()(images);
  auto cls = cls_token();
  if (pos_embed().defined()) {
    patches = patches + pos_embed().narrow(1, 1, patches.size(1));
    cls = cls + pos_embed().narrow(1, 0, 1);
  }
  const auto visible = gather_tokens(patches, masking.keep);
  return encode_tokens(torch::cat({cls.expand({visible.size(0), -1, -1}).to(visible.scalar_type()), visible}, 1));
}

torch::Tensor MaskedAutoencoderImpl::decode(const torch::Tensor& latent, const Masking& masking) {
  auto x = decoder_embed_(latent);
  const int64_t hidden = masking.restore.size(1) + 1 - x.size(1);
  const auto mask_tokens = mask_token_.to(x.scalar_type()).expand({x.size(0), hidden, -1});
  const auto in_patch_order = gather_tokens(torch::cat({x.slice(1, 1), mask_tokens}, 1), masking.restore);
  x = torch::cat({x.narrow(1, 0, 1), in_patch_order}, 1) + decoder_pos_embed_;
  return decoder_pred_(forward_blocks(decoder_blocks_, x, decoder_norm_)).slice(1, 1).to(torch::kFloat32);
}

torch::Tensor MaskedAutoencoderImpl::patchify(const torch::Tensor& images) const {
  const int64_t p = mae_.encoder.patch_size;
  const int64_t grid = mae_.encoder.grid_size();
  return images.reshape({images.size(0), images.size(1), grid, p, grid, p})
      .permute({0, 2, 4, 3, 5, 1})
      .reshape({images.size(0), grid * grid, mae_.patch_pixels()});
}

torch::Tensor MaskedAutoencoderImpl::unpatchify(const torch::Tensor& patches) const {
  const int64_t p = mae_.encoder.patch_size;
  const int64_t grid = mae_.encoder.grid_size();
  const int64_t channels = mae_.encoder.in_chans;
  return patches.reshape({patches.size(0), grid, grid, p, p, channels})
      .permute({0, 5, 1, 3, 2, 4})
      .reshape({patches.size(0), channels, grid * p, grid * p});
}

MaskedAutoencoderImpl::Targets MaskedAutoencoderImpl::targets(const torch::Tensor& images) const {
  Targets result;
  result.pixels = patchify(images.to(torch::kFloat32));
  if (!mae_.norm_pix_loss) return result;
  // The unbiased variance, as the official code's Tensor.var.
  result.mean = result.pixels.mean(-1, /*keepdim=*/true);
  result.std = (result.pixels.var(-1, /*unbiased=*/true, /*keepdim=*/true) + kNormPixEpsilon).sqrt();
  result.pixels = (result.pixels - result.mean) / result.std;
  return result;
}

torch::Tensor MaskedAutoencoderImpl::reconstruction_loss(const torch::Tensor& images, const torch::Tensor& noise) {
  const auto hidden = masking(noise);
  const auto predicted = decode(encode(images, hidden), hidden);
  const auto per_patch = (predicted - targets(images).pixels).pow(2).mean(-1);
  return (per_patch * hidden.mask).sum() / hidden.mask.sum();
}

MaskedImageModel::Reconstruction MaskedAutoencoderImpl::reconstruct(const torch::Tensor& images,
                                                                    const torch::Tensor& noise) {
  torch::NoGradGuard no_grad;
  const auto hidden = masking(noise);
  auto predicted = decode(encode(images, hidden), hidden);
  // Predictions of normalized patches shown in pixels: with each original patch's own statistics,
  // as the official demo does.
  const auto target = targets(images);
  if (mae_.norm_pix_loss) predicted = predicted * target.std + target.mean;
  const auto mask = unpatchify(hidden.mask.unsqueeze(-1).expand({-1, -1, mae_.patch_pixels()}).contiguous());
  const auto masked = images.to(torch::kFloat32) * (1.0 - mask);
  return {masked, masked + unpatchify(predicted) * mask};
}

bool MaskedAutoencoderImpl::decays(const std::string& name, const torch::Tensor& parameter) const {
  return name != "mask_token" && VisionTransformerImpl::decays(name, parameter);
}

int64_t MaskedAutoencoderImpl::macs(const std::string& part) const {
  const auto& encoder = mae_.encoder;
  const int64_t patches = encoder.num_patches();
  if (part.rfind("blocks.", 0) == 0) return block_macs(block_options(0.0), tokens());
  if (part.rfind("decoder_blocks.", 0) == 0) return block_macs(decoder_block_options(), patches + 1);
  if (part == "decoder_embed") return tokens() * encoder.embed_dim * mae_.decoder_dim;
  if (part == "decoder_pred") return patches * mae_.decoder_dim * mae_.patch_pixels();
  return VisionTransformerImpl::macs(part);
}

int64_t MaskedAutoencoderImpl::activation_bytes() const {
  const auto& encoder = mae_.encoder;
  const int64_t patches = encoder.num_patches();
  const int64_t embedding =
      encoder.in_chans * encoder.image_size * encoder.image_size + 2 * patches * encoder.embed_dim;
  const int64_t encoder_blocks = (encoder.depth + 1) * block_activation_floats(block_options(0.0), tokens());
  const int64_t decoder_blocks = mae_.decoder_depth * block_activation_floats(decoder_block_options(), patches + 1);
  const int64_t outputs = 3 * patches * mae_.patch_pixels();  // prediction, target, squared error
  return static_cast<int64_t>(sizeof(float)) * (embedding + encoder_blocks + decoder_blocks + outputs);
}

}  // namespace vit::models
