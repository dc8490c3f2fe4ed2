#include "app/train/mean_average_precision.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <utility>

namespace vit::app {
namespace {

constexpr int kThresholds = 10;  // IoU 0.50, 0.55, ..., 0.95
constexpr int kRecallPoints = 101;

double threshold(int t) { return 0.5 + 0.05 * t; }

// One category's detections of all images, in image order: score and, per IoU threshold,
// whether it matched an object.
struct CategoryResults {
  std::vector<double> scores;
  std::vector<std::array<bool, kThresholds>> matched;
  int64_t objects = 0;
};

// The 101-point interpolated precision of one threshold, averaged.
double average_precision(const CategoryResults& results, int t) {
  std::vector<size_t> order(results.scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return results.scores[a] > results.scores[b]; });
  std::vector<double> recall, precision;
  double true_positives = 0.0, false_positives = 0.0;
  for (const size_t i : order) {
    (results.matched[i][static_cast<size_t>(t)] ? true_positives : false_positives) += 1.0;
    recall.push_back(true_positives / static_cast<double>(results.objects));
    precision.push_back(true_positives / (true_positives + false_positives));
  }
  for (size_t i = precision.size(); i-- > 1;) precision[i - 1] = std::max(precision[i - 1], precision[i]);
  double sum = 0.0;
  for (int r = 0; r < kRecallPoints; ++r) {
    const double wanted = r / 100.0;
    const auto at = std::lower_bound(recall.begin(), recall.end(), wanted);
    if (at != recall.end()) sum += precision[static_cast<size_t>(at - recall.begin())];
  }
  return sum / kRecallPoints;
}

}  // namespace

double box_iou(const BoxCorners& a, const BoxCorners& b) {
  const double width = std::min(a[2], b[2]) - std::max(a[0], b[0]);
  const double height = std::min(a[3], b[3]) - std::max(a[1], b[1]);
  if (width <= 0.0 || height <= 0.0) return 0.0;
  const double intersection = width * height;
  const double union_area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - intersection;
  return union_area > 0.0 ? intersection / union_area : 0.0;
}

AveragePrecision mean_average_precision(const std::vector<ScoredBox>& detections,
                                        const std::vector<LabelledBox>& objects, int64_t num_classes,
                                        int64_t max_detections) {
  // (image, category) -> its detections and objects.
  std::map<std::pair<int64_t, int64_t>, std::pair<std::vector<const ScoredBox*>, std::vector<const LabelledBox*>>>
      groups;
  for (const auto& detection : detections) groups[{detection.image, detection.category}].first.push_back(&detection);
  for (const auto& object : objects) groups[{object.image, object.category}].second.push_back(&object);

  std::vector<CategoryResults> categories(static_cast<size_t>(num_classes));
  for (auto& [key, group] : groups) {
    const auto category = key.second;
    if (category < 0 || category >= num_classes) continue;
    auto& [found, truths] = group;
    auto& results = categories[static_cast<size_t>(category)];
    results.objects += static_cast<int64_t>(truths.size());
    std::stable_sort(found.begin(), found.end(),
                     [](const ScoredBox* a, const ScoredBox* b) { return a->score > b->score; });
    if (static_cast<int64_t>(found.size()) > max_detections) found.resize(static_cast<size_t>(max_detections));
    std::vector<std::array<bool, kThresholds>> taken(truths.size());
    for (auto& flags : taken) flags.fill(false);
    for (const auto* detection : found) {
      std::array<bool, kThresholds> matched{};
      for (int t = 0; t < kThresholds; ++t) {
        double best = std::min(threshold(t), 1.0 - 1e-10);
        int64_t chosen = -1;
        for (size_t g = 0; g < truths.size(); ++g) {
          if (taken[g][static_cast<size_t>(t)]) continue;
          const double iou = box_iou(detection->box, truths[g]->box);
          if (iou < best) continue;
          best = iou;
          chosen = static_cast<int64_t>(g);
        }
        if (chosen >= 0) {
          taken[static_cast<size_t>(chosen)][static_cast<size_t>(t)] = true;
          matched[static_cast<size_t>(t)] = true;
        }
      }
      results.scores.push_back(detection->score);
      results.matched.push_back(matched);
    }
  }

  AveragePrecision result;
  double sum = 0.0, sum50 = 0.0, sum75 = 0.0;
  int64_t counted = 0;
  for (const auto& results : categories) {
    if (results.objects == 0) {
      result.per_class.push_back(std::numeric_limits<double>::quiet_NaN());
      continue;
    }
    double category_sum = 0.0;
    for (int t = 0; t < kThresholds; ++t) {
      const double ap = average_precision(results, t);
      category_sum += ap;
      if (t == 0) sum50 += ap;
      if (t == 5) sum75 += ap;
    }
    result.per_class.push_back(category_sum / kThresholds);
    sum += category_sum / kThresholds;
    ++counted;
  }
  if (counted > 0) {
    result.map = sum / static_cast<double>(counted);
    result.ap50 = sum50 / static_cast<double>(counted);
    result.ap75 = sum75 / static_cast<double>(counted);
  }
  return result;
}

}  // namespace vit::app
