#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace vit::models {

// What an object detector (DETR) offers besides ImageModel: a fixed set of predictions per image,
// each a class distribution whose last entry means "no object" and a box.
class DetectionModel {
 public:
  virtual ~DetectionModel() = default;

  // Class logits [B, Q, C + 1] (the last: no object) and boxes [B, Q, 4] as (cx, cy, w, h) in
  // [0, 1] of the input image; fp32.
  struct Predictions {
    torch::Tensor logits;
    torch::Tensor boxes;
  };
  // The final decoder layer's predictions (what inference uses).
  virtual Predictions detect(const torch::Tensor& images) = 0;
  // Every decoder layer's predictions, the final layer's first (DETR's auxiliary losses supervise
  // the earlier ones too).
  virtual std::vector<Predictions> detect_per_layer(const torch::Tensor& images) = 0;
  virtual int64_t num_queries() const = 0;
};

// What inference makes of class logits [..., C + 1] (DETR's PostProcess): each query's most likely
// object class, the no-object class aside, and that class's probability as its score.
struct ObjectScores {
  torch::Tensor scores;
  torch::Tensor classes;
};
inline ObjectScores object_scores(const torch::Tensor& logits) {
  const auto probabilities = logits.softmax(-1);
  auto [scores, classes] = probabilities.narrow(-1, 0, probabilities.size(-1) - 1).max(-1);
  return {scores, classes};
}

// The objects of a batch of images, as a detection loss and mAP read them: boxes [N, 4] (cx, cy, w, h)
// in [0, 1] and class indices [N] of all images, image after image, `counts[b]` of them image b's.
struct DetectionTargets {
  torch::Tensor boxes;
  torch::Tensor labels;
  std::vector<int64_t> counts;
};

}  // namespace vit::models
