// The Swin Transformer's pieces: published parameter counts, construction errors for sizes the
// windows and merges do not divide, window partition/merge and the shifted-window mask, patch
// merging's neighbour order, stochastic depth over all blocks, timm's parameter names, and bf16
// on either kernels of its products.
#include "models/swin/swin_transformer.h"
#include "app/train/autocast.h"
#include "models/core/registry.h"
#include "models/inspect/complexity.h"
#include "models/layers/patch_merging.h"
#include "models/layers/window_attention.h"
#include "models/swin/swin_architecture.h"
#include "support/test_support.h"

#include <gtest/gtest.h>

namespace vit::models {
namespace {

int64_t parameter_count(const ImageModel& model) {
  int64_t total = 0;
  for (const auto& parameter : model->parameters()) total += parameter.numel();
  return total;
}

std::string construction_error(const SwinOptions& options) {
  try {
    SwinTransformer model(options);
  } catch (const std::invalid_argument& error) {
    return error.what();
  }
  return "";
}

TEST(SwinTransformer, PresetsHaveThePublishedParameterCounts) {
  // torchvision's swin_t / swin_s / swin_b and timm's swin_*_patch4_window7_224.
  EXPECT_EQ(parameter_count(build_model(architecture("swin").preset("swin_tiny_patch4_window7_224"))), 28288354);
  EXPECT_EQ(parameter_count(build_model(architecture("swin").preset("swin_small_patch4_window7_224"))), 49606258);
  EXPECT_EQ(parameter_count(build_model(architecture("swin").preset("swin_base_patch4_window7_224"))), 87768224);
}

TEST(SwinTransformer, SmallImagePresetsTakeTheirInputs) {
  for (const auto& [name, channels, side] :
       {std::tuple<std::string, int64_t, int64_t>{"swin_micro_patch2_window7_28", 1, 28},
        {"swin_micro_patch2_window4_32", 3, 32}}) {
    SCOPED_TRACE(name);
    auto model = build_model(architecture("swin").preset(name));
    model->eval();
    torch::NoGradGuard no_grad;
    EXPECT_EQ(model(torch::randn({2, channels, side, side})).sizes(), (std::vector<int64_t>{2, 10}));
  }
}

TEST(SwinTransformer, SizesThatTheWindowsOrMergesDoNotDivideAreRefusedNamingThem) {
  SwinOptions options;  // Swin-T: 224 / 4 = 56, 28, 14, 7 with windows of 7
  options.image_size = 200;
  auto error = construction_error(options);
  EXPECT_NE(error.find("image_size 200 / patch_size 4 gives stage 0 a 50x50 map, not divisible by window_size 7"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("224"), std::string::npos) << error;  // a size that fits

  options.image_size = 196;  // 49, which merging cannot halve
  error = construction_error(options);
  EXPECT_NE(error.find("stage 0 a 49x49 map, which patch merging cannot halve for stage 1"), std::string::npos)
      << error;

  options.image_size = 226;
  EXPECT_NE(construction_error(options).find("image_size 226 is not divisible by patch_size 4"), std::string::npos);

  options.image_size = 224;
  options.num_heads = {3, 6, 12};
  EXPECT_NE(construction_error(options).find("heads lists 3 stages, depths 4"), std::string::npos);
  options.num_heads = {3, 5, 12, 24};
  EXPECT_NE(construction_error(options).find("stage 1 is 192 wide"), std::string::npos);

  // A stage whose map is no larger than the window attends over the whole map: 112 px gives
  // 28, 14, 7 and 3.5 -> refused at the last merge; three stages fit.
  options.num_heads = {3, 6, 12};
  options.depths = {2, 2, 6};
  options.image_size = 112;
  EXPECT_EQ(construction_error(options), "");
  EXPECT_EQ(options.stage_window(2), 7);
  options.image_size = 56;  // 14, 7, then 3.5
  EXPECT_NE(construction_error(options).find("stage 1 a 7x7 map, which patch merging cannot halve"), std::string::npos);
}

TEST(SwinTransformer, OneWindowStagesUseTheMapAsTheirWindowUnshifted) {
  SwinOptions options;
  options.image_size = 32;
  options.patch_size = 2;
  options.window_size = 8;
  options.depths = {2, 2, 2};
  options.num_heads = {1, 2, 4};
  // 16 (two windows of 8 per side, shifted by 4), 8 (one window), 4 (one window of 4).
  EXPECT_EQ(options.stage_window(0), 8);
  EXPECT_EQ(options.stage_shift(0), 4);
  EXPECT_EQ(options.stage_shift(1), 0);
  EXPECT_EQ(options.stage_window(2), 4);
  SwinTransformer model(options);
  const auto parameters = model->named_parameters();
  EXPECT_EQ(parameters["layers.2.blocks.0.attn.relative_position_bias_table"].sizes(),
            (std::vector<int64_t>{7 * 7, 4}));
  const auto buffers = model->named_buffers();
  EXPECT_NE(buffers.find("layers.0.blocks.1.attn_mask"), nullptr);
  EXPECT_EQ(buffers.find("layers.0.blocks.0.attn_mask"), nullptr);
  EXPECT_EQ(buffers.find("layers.1.blocks.1.attn_mask"), nullptr);
}

TEST(SwinTransformer, ParameterNamesAreTimms) {
  SwinTransformer model(swin_preset("swin_micro_patch2_window4_32"));
  const auto parameters = model->named_parameters();
  for (const auto* name :
       {"patch_embed.proj.weight", "patch_embed.norm.weight", "layers.0.blocks.1.norm1.weight",
        "layers.0.blocks.1.attn.qkv.weight", "layers.0.blocks.1.attn.proj.bias",
        "layers.0.blocks.1.attn.relative_position_bias_table", "layers.0.blocks.1.mlp.fc1.weight",
        "layers.0.blocks.1.mlp.fc2.bias", "layers.1.downsample.norm.weight", "layers.1.downsample.reduction.weight",
        "layers.2.blocks.0.norm2.bias", "norm.weight", "head.fc.weight", "head.fc.bias"}) {
    EXPECT_NE(parameters.find(name), nullptr) << name;
  }
  EXPECT_EQ(parameters.find("layers.0.downsample.norm.weight"), nullptr);
  EXPECT_EQ(parameters.find("layers.1.downsample.reduction.bias"), nullptr);  // bias-free, as in the paper
  // Bias tables and 1-D tensors do not decay; the head is the classifier.
  EXPECT_FALSE(model->decays("layers.0.blocks.0.attn.relative_position_bias_table",
                             parameters["layers.0.blocks.0.attn.relative_position_bias_table"]));
  EXPECT_TRUE(model->decays("layers.0.blocks.0.attn.qkv.weight", parameters["layers.0.blocks.0.attn.qkv.weight"]));
  EXPECT_TRUE(model->in_head("head.fc.weight"));
  // Layer decay ids: embeddings 0, blocks 1..6 over the stages, a merge with its stage's first block.
  EXPECT_EQ(model->layer_count(), 7);
  EXPECT_EQ(model->layer_of("patch_embed.proj.weight"), 0);
  EXPECT_EQ(model->layer_of("layers.0.blocks.1.norm1.weight"), 2);
  EXPECT_EQ(model->layer_of("layers.1.downsample.norm.weight"), 3);
  EXPECT_EQ(model->layer_of("layers.2.blocks.1.mlp.fc1.weight"), 6);
  EXPECT_EQ(model->layer_of("head.fc.weight"), 7);
}

TEST(SwinTransformer, WindowPartitionIsRowMajor) {
  const auto map = torch::arange(2 * 8 * 8 * 3, torch::kFloat32).reshape({2, 8, 8, 3});
  const auto windows = window_partition(map, 4);
  ASSERT_EQ(windows.sizes(), (std::vector<int64_t>{8, 16, 3}));
  // Window 1 of image 0 is the top-right 4x4 block; its token 5 is row 1, column 1 inside it.
  EXPECT_TRUE(windows[1][5].equal(map[0][1][5]));
  EXPECT_TRUE(windows[7][0].equal(map[1][4][4]));
}

TEST(SwinTransformer, WindowTokensAreTheRolledPartitionAndMergeBackWithTheRollsGradients) {
  torch::manual_seed(31);
  for (const int64_t shift : {0, 2}) {
    for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
      const WindowTokens tokens(8, 12, 4, shift);
      const auto values = torch::randn({2, 8, 12, 3}).to(dtype);
      const auto map = values.clone().requires_grad_();
      const auto reference_map = values.clone().requires_grad_();
      const auto windows = tokens.partition(map);
      const auto rolled = shift > 0 ? torch::roll(reference_map, {-shift, -shift}, {1, 2}) : reference_map;
      const auto expected = window_partition(rolled, 4);
      ASSERT_EQ(windows.sizes(), (std::vector<int64_t>{12, 16, 3}));
      EXPECT_TRUE(windows.equal(expected)) << "shift " << shift;
      EXPECT_TRUE(tokens.merge(windows).equal(values)) << "shift " << shift;

      const auto upstream = torch::randn(windows.sizes()).to(dtype);
      windows.backward(upstream);
      expected.backward(upstream);
      EXPECT_TRUE(map.grad().equal(reference_map.grad())) << "shift " << shift;
      // merge's gradient is partition's gather: merge(windows)'s gradient is its upstream partitioned.
      const auto merge_input = windows.detach().requires_grad_();
      const auto map_upstream = torch::randn({2, 8, 12, 3}).to(dtype);
      tokens.merge(merge_input).backward(map_upstream);
      EXPECT_TRUE(merge_input.grad().equal(tokens.partition(map_upstream))) << "shift " << shift;
    }
  }
  EXPECT_TRUE(window_token_order(4, 4, 2, 1)
                  .equal(torch::tensor({5, 6, 9, 10, 7, 4, 11, 8, 13, 14, 1, 2, 15, 12, 3, 0}, torch::kLong)));
}

TEST(SwinTransformer, ShiftedWindowMaskSeparatesOnlyWhatTheShiftBroughtTogether) {
  // An 8x8 map, windows of 4, shift 2: the top-left window holds one region; the bottom-right one
  // holds four (interior, wrapped rows, wrapped columns, the wrapped corner).
  const auto mask = shifted_window_mask(8, 8, 4, 2);
  ASSERT_EQ(mask.sizes(), (std::vector<int64_t>{4, 16, 16}));
  EXPECT_EQ(mask[0].abs().sum().item<double>(), 0.0);
  // In the bottom-right window, token 0 (row 0, column 0) is interior, token 2 (row 0, column 2)
  // came from the left edge, token 10 (row 2, column 2) from the top-left corner.
  EXPECT_EQ(mask[3][0][1].item<double>(), 0.0);
  EXPECT_EQ(mask[3][0][2].item<double>(), -100.0);
  EXPECT_EQ(mask[3][2][3].item<double>(), 0.0);
  EXPECT_EQ(mask[3][10][15].item<double>(), 0.0);
  EXPECT_EQ(mask[3][10][8].item<double>(), -100.0);
  EXPECT_TRUE(mask.equal(mask.transpose(1, 2)));
  // The top-right window: columns 0-1 interior, 2-3 wrapped; every row alike.
  EXPECT_EQ(mask[1][0][1].item<double>(), 0.0);
  EXPECT_EQ(mask[1][0][14].item<double>(), -100.0);
}

TEST(SwinTransformer, PatchMergingConcatenatesNeighboursColumnMajor) {
  PatchMerging merging(1);
  torch::NoGradGuard no_grad;
  auto parameters = merging->named_parameters();
  // A 2x2 map of one channel holding 1, 2 (top row), 3, 4: merged as (0,0), (1,0), (0,1), (1,1)
  // (torchvision's x0, x1, x2, x3), i.e. 1, 3, 2, 4, normalized (an increasing map) and read out
  // two channels at a time by the reduction.
  const auto map = torch::tensor({1.0f, 2.0f, 3.0f, 4.0f}).reshape({1, 2, 2, 1});
  std::vector<float> merged;
  for (const auto& rows : {std::vector<float>{1, 0, 0, 0, 0, 1, 0, 0}, std::vector<float>{0, 0, 1, 0, 0, 0, 0, 1}}) {
    parameters["reduction.weight"].copy_(torch::tensor(rows).reshape({2, 4}));
    const auto out = merging(map).flatten();
    merged.push_back(out[0].item<float>());
    merged.push_back(out[1].item<float>());
  }
  EXPECT_LT(merged[0], merged[2]);  // 1 < 2
  EXPECT_LT(merged[2], merged[1]);  // 2 < 3
  EXPECT_LT(merged[1], merged[3]);  // 3 < 4
  EXPECT_EQ(merging(torch::randn({2, 4, 6, 1})).sizes(), (std::vector<int64_t>{2, 2, 3, 2}));
}

TEST(SwinTransformer, ComplexityIsReportedPerStage) {
  const auto model = build_model(architecture("swin").preset("swin_tiny_patch4_window7_224"));
  const auto complexity = measure_complexity(*model);
  EXPECT_EQ(complexity.parameters, 28288354);
  std::vector<std::string> names;
  for (const auto& module : complexity.modules) names.push_back(module.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"patch_embed", "layers.0", "layers.1", "layers.2", "layers.3", "norm", "head"}));
  // The paper's 4.5 GFLOPs (multiply-accumulates) for Swin-T at 224 px.
  EXPECT_NEAR(static_cast<double>(complexity.macs) / 1e9, 4.5, 0.05);
}

TEST(SwinTransformer, StochasticDepthRisesOverAllBlocksAndOnlyInTraining) {
  auto options = swin_preset("swin_micro_patch2_window4_32");
  options.drop_path_rate = 0.5;
  SwinTransformer model(options);
  const auto images = torch::randn({4, 3, 32, 32});
  model->eval();
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(model(images).equal(model(images)));
  model->train();
  EXPECT_FALSE(model(images).equal(model(images)));
}

// One Swin block by its formula, from the block's own layers, each one called as a module:
//   y = x + merge(attn(partition(norm1(x)))),  y + mlp(norm2(y))
// LibTorch's LayerNorm and adds; under bf16 autocast the LayerNorms' outputs cast to bf16 as the
// layers after them would cast them.
torch::Tensor by_the_formula(SwinBlock& block, const SwinBlockOptions& options, const torch::Tensor& x, bool bf16) {
  auto layers = block->named_children();
  auto norm1 = std::dynamic_pointer_cast<torch::nn::LayerNormImpl>(layers["norm1"]);
  auto attn = std::dynamic_pointer_cast<WindowAttentionImpl>(layers["attn"]);
  auto norm2 = std::dynamic_pointer_cast<torch::nn::LayerNormImpl>(layers["norm2"]);
  auto mlp = std::dynamic_pointer_cast<MlpImpl>(layers["mlp"]);
  const WindowTokens windows(options.resolution, options.resolution, options.window_size, options.shift_size);
  const auto shift_mask = options.shift_size > 0 ? *block->named_buffers().find("attn_mask") : torch::Tensor();
  const auto cast = [&](const torch::Tensor& t) { return bf16 ? t.to(torch::kBFloat16) : t; };
  const auto y = x + windows.merge(attn->forward(windows.partition(cast(norm1->forward(x))), shift_mask));
  return y + mlp->forward(cast(norm2->forward(y)));
}

// A stage's blocks hand on a residual stream, each block's MLP branch added by the next block's
// first LayerNorm in the same pass; under bf16 autocast with products on the fp32 kernels, the
// LayerNorms write bf16 values that the window attention and the MLP read as they are. A regular
// and a shifted block so, forward and backward, against the blocks by their formula: fp32 to
// fp32's last bits, bf16 (oneDNN's products or the fp32 kernels') to the few bf16 roundings that
// a LayerNorm's last fp32 bit may flip.
TEST(SwinTransformer, BlocksOnTheResidualStreamAreTheirFormulaInFp32AndInBf16OnEitherKernels) {
  const SwinBlockOptions regular{32, 2, 8, 4, 0, 64}, shifted{32, 2, 8, 4, 2, 64};
  const vit::testing::IntraOpThreads one_thread(1);  // as in a batch slice, where the stream's kernels run
  torch::manual_seed(31);
  SwinBlock first(regular), second(shifted);
  const auto input = torch::randn({2, 8, 8, 32});
  const auto upstream = torch::randn({2, 8, 8, 32});
  const auto run = [&](bool bf16, bool on_the_stream) {
    const auto x = input.clone().requires_grad_();
    first->zero_grad();
    second->zero_grad();
    torch::Tensor y;
    {
      const app::AutocastGuard autocast(torch::kCPU, torch::kBFloat16, bf16);
      if (on_the_stream) {
        const auto stream = second->forward_stream(first->forward_stream({x, {}}));
        // The residual adds ran in the LayerNorms' passes (the stream's kernel serves one thread).
        EXPECT_NE(stream.residual.grad_fn()->name().find("ResidualLayerNorm"), std::string::npos);
        // The MLP branch leaves the rounding of its product to bf16 (bf16 on the fp32 kernels), or
        // else fc2's bias, to the pass that adds it.
        if (__builtin_cpu_supports("avx2")) {
          EXPECT_EQ(stream.pending.bf16_values, bf16 && bf16_products() == Bf16Products::kFp32Blas);
          EXPECT_EQ(stream.pending.bias.defined(), !stream.pending.bf16_values);
        }
        y = stream.value();
      } else {
        y = by_the_formula(second, shifted, by_the_formula(first, regular, x, bf16), bf16);
      }
    }
    (y * upstream).sum().backward();
    std::vector<torch::Tensor> outputs{y.detach(), x.grad()};
    for (auto* block : {&first, &second}) {
      for (const auto& parameter : (*block)->parameters()) outputs.push_back(parameter.grad().clone());
    }
    return outputs;
  };
  struct Case {
    const char* name;
    bool bf16;
    Bf16Products products;
    double output_tolerance, gradient_tolerance;
  };
  for (const auto& c : {Case{"fp32", false, Bf16Products::kOneDnn, 1e-6, 1e-5},
                        Case{"bf16, oneDNN's products", true, Bf16Products::kOneDnn, 2e-3, 2e-2},
                        Case{"bf16 on the fp32 kernels", true, Bf16Products::kFp32Blas, 2e-3, 2e-2}}) {
    SCOPED_TRACE(c.name);
    const vit::testing::ScopedBf16Products chosen(c.products);
    const auto stream = run(c.bf16, true), formula = run(c.bf16, false);
    ASSERT_EQ(stream.size(), formula.size());
    EXPECT_LT(vit::testing::relative_error(stream[0], formula[0]), c.output_tolerance);
    for (size_t i = 1; i < stream.size(); ++i) {
      EXPECT_LT(vit::testing::relative_error(stream[i], formula[i]), c.gradient_tolerance) << "gradient " << i;
    }
  }
}

}  // namespace
}  // namespace vit::models
