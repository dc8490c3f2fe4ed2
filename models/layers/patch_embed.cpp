#include "models/layers/patch_embed.h"

#include "models/layers/linear.h"

#include <torch/csrc/jit/frontend/tracer.h>

namespace vit::models {

PatchEmbedImpl::PatchEmbedImpl(const PatchEmbedOptions& options) : options_(options) {
  TORCH_CHECK(options.patch_size > 0 && options.image_size % options.patch_size == 0, "PatchEmbed: image size ",
              options.image_size, " is not divisible by patch size ", options.patch_size);
  proj_ = register_module(
      "proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(options.in_chans, options.embed_dim, options.patch_size)
                                    .stride(options.patch_size)));
  if (options.norm) {
    norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({options.embed_dim})));
  }
}

torch::Tensor PatchEmbedImpl::project(const torch::Tensor& images) {
  // The convolution's stride is its kernel: one linear map of each patch's pixels, which
  // LibTorch 1.13's CPU convolution runs far slower backwards (its weight gradient) than a matrix
  // product. The traced (exported) graph keeps the convolution, whose shapes stay symbolic.
  if (torch::jit::tracer::isTracing()) return proj_(images).flatten(2).transpose(1, 2);
  const int64_t batch = images.size(0), channels = options_.in_chans, p = options_.patch_size;
  const int64_t grid = options_.image_size / p;
  const auto patches = images.reshape({batch, channels, grid, p, grid, p})
                           .permute({0, 2, 4, 1, 3, 5})
                           .reshape({batch, grid * grid, channels * p * p});
  return linear(patches, proj_->weight.flatten(1), proj_->bias);
}

torch::Tensor PatchEmbedImpl::forward(const torch::Tensor& images) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == options_.in_chans && images.size(2) == options_.image_size &&
                  images.size(3) == options_.image_size,
              "PatchEmbed: expected images of shape [B, ", options_.in_chans, ", ", options_.image_size, ", ",
              options_.image_size, "], got ", images.sizes());
  const auto tokens = project(images);
  if (norm_.is_empty()) return tokens;
  // LibTorch 1.13's CPU autocast leaves layer_norm to run in its input's dtype, which must then
  // match the fp32 weights: the norm runs in fp32, as autocast's fp32 policy does on CUDA.
  return norm_(tokens.to(norm_->weight.scalar_type()));
}

}  // namespace vit::models
