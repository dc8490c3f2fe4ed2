#include "models/layers/patch_embed.h"

namespace vit::models {

PatchEmbedImpl::PatchEmbedImpl(const PatchEmbedOptions& options) : options_(options) {
  TORCH_CHECK(options.patch_size > 0 && options.image_size % options.patch_size == 0, "PatchEmbed: image size ",
              options.image_size, " is not divisible by patch size ", options.patch_size);
  proj_ = register_module(
      "proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(options.in_chans, options.embed_dim, options.patch_size)
                                    .stride(options.patch_size)));
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& images) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == options_.in_chans && images.size(2) == options_.image_size &&
                  images.size(3) == options_.image_size,
              "PatchEmbed: expected images of shape [B, ", options_.in_chans, ", ", options_.image_size, ", ",
              options_.image_size, "], got ", images.sizes());
  return proj_(images).flatten(2).transpose(1, 2);
}

}  // namespace vit::models
