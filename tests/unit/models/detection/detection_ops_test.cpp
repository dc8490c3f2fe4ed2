// The detection building blocks against their peers: the linear assignment against scipy's
// linear_sum_assignment, GIoU and IoU against torchvision.ops, the Hungarian matching and DETR's
// heads on hand-made cases.
#include "models/core/registry.h"
#include "models/detection/box_ops.h"
#include "models/detection/hungarian_matcher.h"
#include "models/detection/linear_assignment.h"
#include "models/detr/detr.h"
#include "support/python_reference.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <numeric>

namespace vit::models {
namespace {

class DetectionReference : public testing::PythonReferenceTest<DetectionReference> {
 public:
  static constexpr const char* kScript = "tests/unit/models/detection/make_detection_reference.py";
};

template <typename T>
std::vector<T> read_values(std::istream& in, size_t count) {
  std::vector<T> values(count);
  for (auto& value : values) in >> value;
  return values;
}

double total_cost(const std::vector<double>& cost, int64_t cols, const Assignment& assignment) {
  double total = 0.0;
  for (size_t i = 0; i < assignment.rows.size(); ++i) {
    total += cost[static_cast<size_t>(assignment.rows[i] * cols + assignment.cols[i])];
  }
  return total;
}

TEST_F(DetectionReference, LinearAssignmentEqualsScipy) {
  std::ifstream in(file("assignments.txt"));
  int cases = 0;
  in >> cases;
  ASSERT_GT(cases, 300);
  int same_pairs = 0;
  for (int i = 0; i < cases; ++i) {
    int64_t rows = 0, cols = 0;
    in >> rows >> cols;
    const auto cost = read_values<double>(in, static_cast<size_t>(rows * cols));
    const auto pairs = static_cast<size_t>(std::min(rows, cols));
    const auto scipy_rows = read_values<int64_t>(in, pairs);
    const auto scipy_cols = read_values<int64_t>(in, pairs);
    double scipy_total = 0.0;
    in >> scipy_total;
    const auto ours = linear_sum_assignment(cost, rows, cols);
    ASSERT_EQ(ours.rows.size(), pairs) << "case " << i;
    // Each row and column at most once, rows ascending.
    EXPECT_TRUE(std::is_sorted(ours.rows.begin(), ours.rows.end()));
    std::vector<int64_t> used_cols = ours.cols;
    std::sort(used_cols.begin(), used_cols.end());
    EXPECT_EQ(std::adjacent_find(used_cols.begin(), used_cols.end()), used_cols.end()) << "case " << i;
    EXPECT_NEAR(total_cost(cost, cols, ours), scipy_total, 1e-9 * std::max(1.0, std::abs(scipy_total))) << "case " << i;
    same_pairs += ours.rows == scipy_rows && ours.cols == scipy_cols;
  }
  // Continuous costs have one optimum: the same pairs as scipy's. Integer costs with ties may have
  // several (the 50 tie cases), where only the least cost must agree.
  EXPECT_GE(same_pairs, cases - 50);
}

TEST(LinearAssignment, EdgeCasesAndErrors) {
  EXPECT_TRUE(linear_sum_assignment({}, 0, 5).rows.empty());
  const auto single = linear_sum_assignment({3.0, 1.0, 2.0}, 1, 3);
  EXPECT_EQ(single.cols, std::vector<int64_t>{1});
  const auto tall = linear_sum_assignment({3.0, 1.0, 2.0}, 3, 1);
  EXPECT_EQ(tall.rows, std::vector<int64_t>{1});
  EXPECT_THROW(linear_sum_assignment({1.0, std::nan("")}, 1, 2), std::invalid_argument);
  EXPECT_THROW(linear_sum_assignment({1.0, 2.0}, 2, 2), std::invalid_argument);
}

torch::Tensor read_tensor(std::istream& in, const std::string& expected_name) {
  std::string line;
  std::getline(in, line);
  std::istringstream header(line);
  std::string name;
  int64_t rows = 0, cols = 0;
  header >> name >> rows >> cols;
  EXPECT_EQ(name, expected_name);
  const auto values = read_values<double>(in, static_cast<size_t>(rows * cols));
  std::getline(in, line);  // the rest of the values' line
  return torch::tensor(values, torch::kFloat64).view({rows, cols});
}

TEST_F(DetectionReference, GeneralizedIouEqualsTorchvision) {
  std::ifstream in(file("giou.txt"));
  const auto a = read_tensor(in, "a");
  const auto b = read_tensor(in, "b");
  const auto giou = read_tensor(in, "giou");
  const auto iou = read_tensor(in, "iou");
  EXPECT_LT((generalized_box_iou(a, b) - giou).abs().max().item<double>(), 1e-12);
  EXPECT_LT((box_iou(a, b) - iou).abs().max().item<double>(), 1e-12);
  EXPECT_NEAR(giou[0][0].item<double>(), 1.0, 1e-12);
  EXPECT_LT(giou[5][5].item<double>(), -0.5);
  // In float32 too, as training computes it.
  EXPECT_LT((generalized_box_iou(a.to(torch::kFloat32), b.to(torch::kFloat32)).to(torch::kFloat64) - giou)
                .abs()
                .max()
                .item<double>(),
            1e-5);
}

TEST(BoxOps, CenterAndCornerFormsRoundTrip) {
  const auto boxes = torch::tensor({{0.5, 0.5, 0.2, 0.4}, {0.1, 0.9, 0.2, 0.2}}, torch::kFloat64);
  const auto corners = box_cxcywh_to_xyxy(boxes);
  EXPECT_TRUE(torch::allclose(corners[0], torch::tensor({0.4, 0.3, 0.6, 0.7}, torch::kFloat64)));
  EXPECT_TRUE(torch::allclose(box_xyxy_to_cxcywh(corners), boxes));
}

// Two images: the first has two objects, the second none; 3 queries each.
TEST(HungarianMatch, PairsEachObjectWithItsClosestConfidentQuery) {
  DetectionModel::Predictions predictions;
  // Classes: 0, 1 and no-object (2). Query 2 of image 0 is sure of class 1, query 0 of class 0.
  predictions.logits = torch::tensor(
      {{{5.0, 0.0, 0.0}, {0.0, 0.0, 5.0}, {0.0, 5.0, 0.0}}, {{0.0, 0.0, 5.0}, {0.0, 0.0, 5.0}, {0.0, 0.0, 5.0}}});
  predictions.boxes = torch::tensor({{{0.2, 0.2, 0.1, 0.1}, {0.5, 0.5, 0.3, 0.3}, {0.7, 0.7, 0.2, 0.2}},
                                     {{0.5, 0.5, 0.1, 0.1}, {0.5, 0.5, 0.1, 0.1}, {0.5, 0.5, 0.1, 0.1}}});
  DetectionTargets targets;
  targets.boxes = torch::tensor({{0.7, 0.7, 0.2, 0.2}, {0.2, 0.2, 0.1, 0.1}});
  targets.labels = torch::tensor({1, 0}, torch::kInt64);
  targets.counts = {2, 0};
  const auto pairs = hungarian_match(predictions, targets, MatchCosts{});
  ASSERT_EQ(pairs.query.numel(), 2);
  EXPECT_EQ(pairs.image.sum().item<int64_t>(), 0);
  // Rows ascending: query 0 takes object 1 (class 0 at 0.2), query 2 object 0.
  EXPECT_EQ(pairs.query[0].item<int64_t>(), 0);
  EXPECT_EQ(pairs.target[0].item<int64_t>(), 1);
  EXPECT_EQ(pairs.query[1].item<int64_t>(), 2);
  EXPECT_EQ(pairs.target[1].item<int64_t>(), 0);
}

TEST(Detr, PredictsAClassDistributionAndABoxPerQueryAtEveryDecoderBlock) {
  auto& architecture = models::architecture("detr");
  auto options = architecture.preset("detr_shapes_64");
  auto model = build_model(options);
  auto* detector = detection_model(model);
  ASSERT_NE(detector, nullptr);
  model->eval();
  torch::NoGradGuard no_grad;
  const auto images = torch::randn({2, 3, 64, 64});
  const auto layers = detector->detect_per_layer(images);
  const auto& detr = options.as<DetrOptions>();
  ASSERT_EQ(static_cast<int64_t>(layers.size()), detr.decoder_depth);
  for (const auto& layer : layers) {
    EXPECT_EQ(layer.logits.sizes(), (std::vector<int64_t>{2, detr.num_queries, detr.num_classes + 1}));
    EXPECT_EQ(layer.boxes.sizes(), (std::vector<int64_t>{2, detr.num_queries, 4}));
    EXPECT_GT(layer.boxes.min().item<double>(), 0.0);
    EXPECT_LT(layer.boxes.max().item<double>(), 1.0);
  }
  // The final block's predictions are what detect() and forward() give.
  const auto final = detector->detect(images);
  EXPECT_TRUE(torch::allclose(final.logits, layers.front().logits, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(final.boxes, layers.front().boxes, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(model(images), final.logits, 1e-5, 1e-6));
  // The backbone keeps the ViT's names (a ViT or MAE checkpoint initialises it by name).
  const auto parameters = model->named_parameters();
  for (const auto* name : {"cls_token", "pos_embed", "patch_embed.proj.weight", "blocks.0.attn.qkv.weight",
                           "norm.weight", "query_embed", "decoder_blocks.0.cross_attn.k_proj.weight",
                           "decoder_norm.weight", "class_embed.weight", "bbox_embed.4.weight"}) {
    EXPECT_NE(parameters.find(name), nullptr) << name;
  }
  EXPECT_FALSE(model->in_head("blocks.0.attn.qkv.weight"));
  EXPECT_TRUE(model->in_head("decoder_blocks.0.mlp.fc1.weight"));
  EXPECT_TRUE(model->in_head("query_embed"));
}

TEST(Detr, AnchorQueriesStartTheirBoxesAtTheirReferencePoints) {
  auto options = models::architecture("detr").preset("detr_shapes_64");
  ASSERT_TRUE(options.as<DetrOptions>().anchor_queries);
  auto model = build_model(options);
  model->eval();
  torch::NoGradGuard no_grad;
  const auto boxes = detection_model(model)->detect(torch::randn({2, 3, 64, 64})).boxes;
  const auto anchors = model->named_parameters()["query_anchor"].sigmoid();
  // The box head starts with small outputs: each query's centre sits near its own point, far
  // nearer than the points are to each other.
  const auto own = (boxes.narrow(2, 0, 2) - anchors).abs().mean().item<double>();
  const auto others = (boxes.narrow(2, 0, 2) - anchors.roll(1, 0)).abs().mean().item<double>();
  EXPECT_LT(own, 0.1);
  EXPECT_LT(own, 0.5 * others);
  // The paper's free queries have no points: every box starts near the image's centre.
  options.as<DetrOptions>().anchor_queries = false;
  auto paper = build_model(options);
  paper->eval();
  EXPECT_EQ(paper->named_parameters().find("query_anchor"), nullptr);
}

TEST(Detr, RefusesInconsistentOptions) {
  auto options = models::architecture("detr").preset("detr_shapes_64");
  options.as<DetrOptions>().decoder_heads = 3;  // 128 is not divisible by 3
  EXPECT_THROW(models::validate(options), std::invalid_argument);
  options.as<DetrOptions>().decoder_heads = 4;
  options.as<DetrOptions>().num_queries = 0;
  EXPECT_THROW(models::validate(options), std::invalid_argument);
}

}  // namespace
}  // namespace vit::models
