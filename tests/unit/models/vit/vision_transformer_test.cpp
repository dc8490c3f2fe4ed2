#include "models/vit/vision_transformer.h"
#include "models/inspect/complexity.h"
#include "models/kernels/autocast_state.h"
#include "models/vit/presets.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <set>

namespace vit::models {
namespace {

VitOptions small_options() { return vit::testing::small_vit(16, 4, 3, 5, 32, 2, 4); }

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

TEST(VisionTransformer, OutputShapes) {
  for (const auto pool : {PoolKind::Cls, PoolKind::Mean}) {
    auto options = small_options();
    options.pool = pool;
    VisionTransformer model(options);
    const auto images = torch::randn({3, 3, 16, 16});
    EXPECT_EQ(model(images).sizes(), (std::vector<int64_t>{3, 5}));
    EXPECT_EQ(model->forward_features(images).sizes(), (std::vector<int64_t>{3, 17, 32}));
    const auto maps = model->attention_maps(images);
    ASSERT_EQ(maps.size(), 2u);
    EXPECT_EQ(maps[0].sizes(), (std::vector<int64_t>{3, 4, 17, 17}));
  }
  auto headless = small_options();
  headless.num_classes = 0;
  EXPECT_EQ(VisionTransformer(headless)(torch::randn({2, 3, 16, 16})).sizes(), (std::vector<int64_t>{2, 32}));
}

TEST(VisionTransformer, RejectsImageSizeNotDivisibleByPatchSize) {
  auto options = small_options();
  options.image_size = 18;
  try {
    VisionTransformer model(options);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("image_size 18 is not divisible by patch_size 4"), std::string::npos);
  }
  EXPECT_THROW(PatchEmbed(PatchEmbedOptions{18, 4, 3, 8}), c10::Error);
}

TEST(VisionTransformer, ParameterNamesMatchTimm) {
  auto options = small_options();
  options.layer_scale_init = 1e-5;
  VisionTransformer model(options);
  std::set<std::string> names;
  for (const auto& item : model->named_parameters()) names.insert(item.key());
  std::set<std::string> expected = {
      "cls_token",   "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias", "norm.weight", "norm.bias",
      "head.weight", "head.bias"};
  for (const std::string block : {"blocks.0.", "blocks.1."}) {
    for (const std::string name : {"norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"}) {
      expected.insert(block + name + ".weight");
      expected.insert(block + name + ".bias");
    }
    expected.insert(block + "ls1.gamma");
    expected.insert(block + "ls2.gamma");
  }
  EXPECT_EQ(names, expected);
}

TEST(VisionTransformer, FixedPositionalEmbeddingsAreBuffersUnderTheSameKey) {
  for (const auto kind : {PosEmbedKind::SinCos2d, PosEmbedKind::Sinusoid1d}) {
    auto options = small_options();
    options.pos_embed = kind;
    VisionTransformer model(options);
    EXPECT_EQ(model->named_parameters().find("pos_embed"), nullptr);
    const auto buffers = model->named_buffers();
    const auto* buffer = buffers.find("pos_embed");
    ASSERT_NE(buffer, nullptr);
    EXPECT_EQ(buffer->sizes(), (std::vector<int64_t>{1, 17, 32}));
  }
}

TEST(VisionTransformer, EncoderIsPermutationEquivariantOnlyWithoutPositionalEmbedding) {
  torch::manual_seed(3);
  const auto patches = torch::randn({2, 16, 32});
  const auto permutation = torch::randperm(16);
  for (const auto kind : {PosEmbedKind::None, PosEmbedKind::Learned, PosEmbedKind::SinCos2d}) {
    auto options = small_options();
    options.pos_embed = kind;
    VisionTransformer model(options);
    model->eval();
    torch::NoGradGuard no_grad;
    const auto out = model->forward_tokens(patches);
    const auto out_permuted = model->forward_tokens(patches.index_select(1, permutation));
    const auto expected = out.slice(1, 1).index_select(1, permutation);
    const double patch_diff = max_abs_diff(out_permuted.slice(1, 1), expected);
    const double cls_diff = max_abs_diff(out_permuted.select(1, 0), out.select(1, 0));
    if (kind == PosEmbedKind::None) {
      EXPECT_LT(patch_diff, 1e-5);
      EXPECT_LT(cls_diff, 1e-5);
    } else {
      EXPECT_GT(patch_diff, 1e-3);
    }
  }
}

TEST(VisionTransformer, EvalOutputOfOneSampleDoesNotDependOnTheBatch) {
  auto options = small_options();
  options.drop_rate = 0.1;
  options.drop_path_rate = 0.2;
  VisionTransformer model(options);
  model->eval();
  torch::NoGradGuard no_grad;
  const auto batch = torch::randn({6, 3, 16, 16});
  const auto together = model(batch);
  for (int64_t i = 0; i < 6; ++i) {
    EXPECT_LT(max_abs_diff(model(batch.slice(0, i, i + 1)), together.slice(0, i, i + 1)), 1e-5);
  }
  const auto other_neighbours = torch::cat({batch.slice(0, 0, 1), torch::randn({4, 3, 16, 16})});
  EXPECT_LT(max_abs_diff(model(other_neighbours).slice(0, 0, 1), together.slice(0, 0, 1)), 1e-5);
}

TEST(VisionTransformer, EveryParameterReceivesAGradient) {
  for (const auto pool : {PoolKind::Cls, PoolKind::Mean}) {
    auto options = small_options();
    options.pool = pool;
    options.layer_scale_init = 0.1;
    options.drop_path_rate = 0.1;
    VisionTransformer model(options);
    model->train();
    const auto logits = model(torch::randn({4, 3, 16, 16}));
    torch::nn::functional::cross_entropy(logits, torch::tensor({0, 1, 2, 3})).backward();
    for (const auto& item : model->named_parameters()) {
      ASSERT_TRUE(item.value().grad().defined()) << item.key();
      EXPECT_GT(item.value().grad().abs().sum().item<double>(), 0.0) << item.key();
    }
  }
}

// With class-token pooling (and distilled) the last block runs its queries, output projection and
// MLP on the special tokens alone: the logits and every parameter's gradient are those of the head
// on all tokens' final states.
TEST(VisionTransformer, AHeadOnTheSpecialTokensGetsTheLogitsAndGradientsOfTheWholeLastBlock) {
  struct Case {
    const char* name;
    bool distilled;
    double layer_scale;
  };
  for (const auto& [name, distilled, layer_scale] :
       {Case{"class token", false, 0.0}, Case{"distilled", true, 0.0}, Case{"layer scale", false, 0.1}}) {
    auto options = small_options();
    options.distilled = distilled;
    options.layer_scale_init = layer_scale;
    torch::manual_seed(0);
    VisionTransformer model(options);
    const auto images = torch::randn({4, 3, 16, 16});
    const auto weights = torch::randn({4, 5});
    const auto gradients_of = [&](const torch::Tensor& logits) {
      model->zero_grad();
      (logits * weights).sum().backward();
      std::map<std::string, torch::Tensor> gradients;
      for (const auto& item : model->named_parameters()) gradients[item.key()] = item.value().grad().clone();
      return gradients;
    };
    const auto logits = model(images);
    const auto gradients = gradients_of(logits);
    const auto whole = model->forward_head(model->forward_features(images));
    const auto whole_gradients = gradients_of(whole);
    EXPECT_LT(max_abs_diff(logits, whole), 1e-5) << name;
    for (const auto& [parameter, gradient] : whole_gradients) {
      const auto scale = 1.0 + gradient.abs().max().item<double>();
      EXPECT_LT(max_abs_diff(gradients.at(parameter), gradient), 1e-5 * scale) << name << ": " << parameter;
    }
  }
}

TEST(VisionTransformer, UnderBf16AutocastAHeadOnTheClassTokenStaysWithinRoundingOfTheWholeLastBlock) {
  torch::manual_seed(0);
  VisionTransformer model(small_options());
  const auto images = torch::randn({4, 3, 16, 16});
  const auto exact = model->forward_head(model->forward_features(images));
  set_autocast_dtype(c10::kCPU, torch::kBFloat16);
  set_autocast_enabled(c10::kCPU, true);
  const auto logits = model(images);
  const auto whole = model->forward_head(model->forward_features(images));
  set_autocast_enabled(c10::kCPU, false);
  EXPECT_LT(vit::testing::relative_error(whole, exact), 2e-2);
  EXPECT_LT(vit::testing::relative_error(logits, exact), 2e-2);
}

TEST(VisionTransformer, DropPathIsActiveOnlyInTraining) {
  auto options = small_options();
  options.drop_path_rate = 0.5;
  VisionTransformer model(options);
  const auto images = torch::randn({8, 3, 16, 16});
  model->train();
  torch::manual_seed(1);
  const auto first = model(images);
  torch::manual_seed(2);
  EXPECT_GT(max_abs_diff(first, model(images)), 1e-4);
  model->eval();
  EXPECT_LT(max_abs_diff(model(images), model(images)), 1e-7);
}

TEST(VisionTransformer, InitialisationFollowsTimm) {
  auto options = preset("vit_small_patch16_224");
  torch::manual_seed(0);
  VisionTransformer model(options);
  auto params = model->named_parameters();
  const auto fc1 = params["blocks.0.mlp.fc1.weight"];
  EXPECT_NEAR(fc1.std().item<double>(), 0.02 * 0.8796, 0.002);  // std of a N(0, .02) truncated at 2 sigma
  EXPECT_LE(fc1.abs().max().item<double>(), 0.04 + 1e-7);
  EXPECT_EQ(params["blocks.0.mlp.fc1.bias"].abs().max().item<double>(), 0.0);
  EXPECT_LT(params["cls_token"].abs().max().item<double>(), 1e-5);
  EXPECT_NEAR(params["pos_embed"].std().item<double>(), 0.02 * 0.8796, 0.002);
  EXPECT_EQ(params["norm.weight"].min().item<double>(), 1.0);
}

struct PresetCount {
  const char* name;
  int64_t parameters;
};

void PrintTo(const PresetCount& count, std::ostream* out) { *out << count.name; }

class PresetParameters : public ::testing::TestWithParam<PresetCount> {};

TEST_P(PresetParameters, EqualThePublishedCounts) {
  VisionTransformer model(preset(GetParam().name));
  EXPECT_EQ(measure_complexity(*model).parameters, GetParam().parameters);
}

INSTANTIATE_TEST_SUITE_P(
    Published, PresetParameters,
    ::testing::Values(PresetCount{"vit_tiny_patch16_224", 5717416}, PresetCount{"vit_small_patch16_224", 22050664},
                      PresetCount{"vit_base_patch16_224", 86567656}, PresetCount{"vit_large_patch16_224", 304326632},
                      PresetCount{"vit_base_patch32_224", 88224232}, PresetCount{"deit_tiny_patch16_224", 5717416},
                      PresetCount{"deit_tiny_distilled_patch16_224", 5910800},
                      PresetCount{"deit_small_distilled_patch16_224", 22436432},
                      PresetCount{"deit_base_distilled_patch16_224", 87338192}),
    [](const auto& info) { return std::string(info.param.name); });

VitOptions distilled_options() {
  auto options = small_options();
  options.distilled = true;
  return options;
}

TEST(DistilledVisionTransformer, HasTimmsDistillationTokenAndHead) {
  VisionTransformer model(distilled_options());
  const auto parameters = model->named_parameters();
  ASSERT_NE(parameters.find("dist_token"), nullptr);
  EXPECT_EQ(parameters["dist_token"].sizes(), (std::vector<int64_t>{1, 1, 32}));
  EXPECT_EQ(parameters["pos_embed"].sizes(), (std::vector<int64_t>{1, 18, 32}));  // 16 patches + 2 tokens
  EXPECT_EQ(parameters["head_dist.weight"].sizes(), (std::vector<int64_t>{5, 32}));
  EXPECT_EQ(parameters["head_dist.bias"].sizes(), (std::vector<int64_t>{5}));
  EXPECT_EQ(model->class_name(), "VisionTransformerDistilled");
  EXPECT_FALSE(model->decays("dist_token", parameters["dist_token"]));
  EXPECT_TRUE(model->in_head("head_dist.weight"));
  EXPECT_FALSE(model->in_head("blocks.0.attn.qkv.weight"));
  // timm initialises the distillation token with std 0.02, the class token near zero.
  EXPECT_GT(parameters["dist_token"].abs().max().item<double>(), 1e-3);
}

TEST(DistilledVisionTransformer, InferenceAveragesTheTwoHeadsThatTrainingReturnsApart) {
  torch::manual_seed(1);
  VisionTransformer model(distilled_options());
  model->eval();
  torch::NoGradGuard no_grad;
  const auto images = torch::randn({3, 3, 16, 16});
  const auto features = model->forward_features(images);
  EXPECT_EQ(features.sizes(), (std::vector<int64_t>{3, 18, 32}));
  const auto parameters = model->named_parameters();
  const auto class_logits =
      torch::nn::functional::linear(features.select(1, 0), parameters["head.weight"], parameters["head.bias"]);
  const auto distillation_logits = torch::nn::functional::linear(features.select(1, 1), parameters["head_dist.weight"],
                                                                 parameters["head_dist.bias"]);
  const auto outputs = model->forward_train(images);
  EXPECT_LE(max_abs_diff(outputs.logits, class_logits), 1e-6);
  EXPECT_LE(max_abs_diff(outputs.distillation_logits, distillation_logits), 1e-6);
  EXPECT_GT(max_abs_diff(outputs.logits, outputs.distillation_logits), 1e-3);  // two heads, not one
  EXPECT_LE(max_abs_diff(model(images), (class_logits + distillation_logits) / 2.0), 1e-6);
  const auto maps = model->attention_maps(images);
  EXPECT_EQ(maps[0].sizes(), (std::vector<int64_t>{3, 4, 18, 18}));
  EXPECT_EQ(model->attention_layout().prefix_tokens, 2);
  // Without a distillation token both training outputs are the single head's logits.
  VisionTransformer plain(small_options());
  plain->eval();
  const auto single = plain->forward_train(images);
  EXPECT_TRUE(torch::equal(single.logits, single.distillation_logits));
  EXPECT_TRUE(torch::equal(single.logits, plain(images)));
}

TEST(DistilledVisionTransformer, EveryParameterLearnsFromTheAverageAndNeedsClassPooling) {
  VisionTransformer model(distilled_options());
  model(torch::randn({2, 3, 16, 16})).sum().backward();
  for (const auto& item : model->named_parameters()) {
    ASSERT_TRUE(item.value().grad().defined()) << item.key();
    EXPECT_GT(item.value().grad().abs().sum().item<double>(), 0.0) << item.key();
  }
  auto mean_pool = distilled_options();
  mean_pool.pool = PoolKind::Mean;
  EXPECT_THROW(VisionTransformer{mean_pool}, std::invalid_argument);
}

TEST(Presets, SmallImagePresetsRunOnTheirInputs) {
  for (const auto* name : {"vit_tiny_patch4_28", "vit_micro_patch4_28"}) {
    VisionTransformer model(preset(name));
    EXPECT_EQ(model(torch::randn({2, 1, 28, 28})).sizes(), (std::vector<int64_t>{2, 10})) << name;
  }
  for (const auto* name : {"vit_tiny_patch4_32", "vit_micro_patch4_32"}) {
    VisionTransformer model(preset(name));
    EXPECT_EQ(model(torch::randn({2, 3, 32, 32})).sizes(), (std::vector<int64_t>{2, 10})) << name;
  }
  EXPECT_THROW(preset("vit_huge"), std::invalid_argument);
}

TEST(Complexity, CountsMatrixProductsOfViTBase) {
  VisionTransformer model(preset("vit_base_patch16_224"));
  const auto complexity = measure_complexity(*model);
  EXPECT_EQ(complexity.tokens, 197);
  // Per block: 197 tokens x (4 D^2 + 2 D 4D) plus 2 x 197^2 x D for the two attention products.
  const int64_t block = 197 * (4 * 768 * 768 + 2 * 768 * 3072) + 2 * 197 * 197 * 768;
  const int64_t expected = 196 * 768 * 3 * 16 * 16 + 12 * block + 768 * 1000;
  EXPECT_EQ(complexity.macs, expected);
  EXPECT_NEAR(complexity.gflops(), 35.13, 0.01);  // 17.56 GMACs, timm/fvcore's "17.6 GFLOPs"
  // The head reads the class token alone: the last block makes keys and values for all 197 tokens,
  // and a query, an attention row, an output projection and an MLP for the class token only.
  const int64_t last_block = 197 * 2 * 768 * 768 + (2 * 768 * 768 + 2 * 768 * 3072 + 2 * 197 * 768);
  EXPECT_EQ(complexity.executed_macs, expected - block + last_block);
  EXPECT_NEAR(complexity.executed_gflops(), 32.70, 0.01);
  auto mean_pooled = preset("vit_base_patch16_224");
  mean_pooled.pool = PoolKind::Mean;
  const auto every_token = measure_complexity(*VisionTransformer(mean_pooled));
  EXPECT_EQ(every_token.executed_macs, every_token.macs);
  int64_t summed = 0;
  for (const auto& module : complexity.modules) summed += module.parameters;
  EXPECT_EQ(summed, complexity.parameters);
}

}  // namespace
}  // namespace vit::models
