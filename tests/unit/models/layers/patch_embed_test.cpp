#include "models/layers/patch_embed.h"

#include <gtest/gtest.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/torch.h>

#include <string>

namespace vit::models {
namespace {

// The module's own parameters through LibTorch's strided convolution, as timm's PatchEmbed runs it.
torch::Tensor convolved(PatchEmbed& embed, const torch::Tensor& images, int64_t patch) {
  const auto& parameters = embed->named_parameters();
  return torch::conv2d(images, parameters["proj.weight"], parameters["proj.bias"], {patch, patch})
      .flatten(2)
      .transpose(1, 2);
}

TEST(PatchEmbed, EqualsTheStridedConvolutionAndItsGradients) {
  torch::manual_seed(31);
  for (const auto& options :
       {PatchEmbedOptions{28, 7, 1, 32}, PatchEmbedOptions{32, 4, 3, 48}, PatchEmbedOptions{224, 16, 3, 64}}) {
    PatchEmbed embed(options);
    const auto images = torch::randn({3, options.in_chans, options.image_size, options.image_size});
    const auto tokens = embed(images);
    const auto upstream = torch::randn_like(tokens);
    const auto gradients = torch::autograd::grad({tokens}, embed->parameters(), {upstream});

    const auto expected = convolved(embed, images, options.patch_size);
    const auto expected_gradients = torch::autograd::grad({expected}, embed->parameters(), {upstream});
    const int64_t grid = options.image_size / options.patch_size;
    ASSERT_EQ(tokens.sizes(), (std::vector<int64_t>{3, grid * grid, options.embed_dim}));
    EXPECT_TRUE(torch::allclose(tokens, expected, 1e-5, 1e-5)) << "patch " << options.patch_size;
    for (size_t i = 0; i < gradients.size(); ++i) {
      EXPECT_TRUE(torch::allclose(gradients[i], expected_gradients[i], 1e-4, 1e-4)) << "parameter " << i;
    }
  }
}

TEST(PatchEmbed, TracesAsTheConvolution) {
  torch::manual_seed(32);
  PatchEmbed embed(PatchEmbedOptions{32, 8, 3, 16});
  for (auto& parameter : embed->parameters()) parameter.requires_grad_(false);  // traced as constants
  const auto traced = torch::jit::tracer::trace(
      {torch::randn({2, 3, 32, 32})},
      [&](torch::jit::Stack inputs) -> torch::jit::Stack { return {embed(inputs[0].toTensor())}; },
      [](const torch::autograd::Variable&) { return std::string(); }, false);
  // The convolution's shapes stay symbolic in an exported graph; the reshapes of the patches would not.
  const auto graph = traced.first->graph->toString();
  EXPECT_TRUE(graph.find("aten::_convolution") != std::string::npos || graph.find("aten::conv2d") != std::string::npos)
      << graph;
  EXPECT_EQ(graph.find("aten::linear"), std::string::npos) << graph;
}

}  // namespace
}  // namespace vit::models
