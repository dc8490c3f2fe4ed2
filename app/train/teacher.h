#pragma once

#include "app/config/config.h"

#include <torch/types.h>

#include <functional>
#include <string>

namespace vit::app {

// The frozen teacher of DeiT-style distillation (train.distillation.teacher): a TorchScript
// module that maps normalized images to logits (a CNN exported from Python, a `vit export`), or a
// vitcpp checkpoint. It runs in eval mode without gradients, under the caller's autocast, on the
// student's normalized batch; where the teacher's own normalization is known (a checkpoint's
// config, an export's config.json) and differs, the batch is renormalized to it first.
class Teacher {
 public:
  // Throws ConfigError naming the file when it is neither kind of file, or when a probe batch of
  // the student's input shape does not give [batch, model.num_classes] logits.
  Teacher(const Config& student, torch::Device device);

  // [B, C, H, W] normalized as the student's inputs -> logits [B, num_classes].
  torch::Tensor logits(const torch::Tensor& inputs) const;
  // The teacher file's CRC-32 and size, which a checkpoint records so that a resumed run can
  // refuse another teacher.
  const std::string& fingerprint() const { return fingerprint_; }
  const std::string& description() const { return description_; }

 private:
  std::function<torch::Tensor(const torch::Tensor&)> forward_;
  torch::Tensor scale_;   // [1, C, 1, 1]: the student's std / the teacher's (undefined: same normalization)
  torch::Tensor offset_;  // [1, C, 1, 1]: (the student's mean - the teacher's) / the teacher's std
  std::string fingerprint_;
  std::string description_;
};

}  // namespace vit::app
