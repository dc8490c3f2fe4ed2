#pragma once

#include <torch/types.h>

#include <vector>

namespace vit::app {

// Dynamic loss scaling for fp16 training, on the ops torch.cuda.amp.GradScaler uses: the loss is
// multiplied by the scale before backward so that small fp16 gradients do not flush to zero;
// before the optimizer step the gradients are divided back and checked for inf/NaN in one
// kernel per tensor list; a step whose gradients overflowed is skipped and the scale halved, and
// after `growth_interval` clean steps the scale doubles. The scale and the count of clean steps
// stay on the device: a step reads back one flag. Those ops exist for CUDA only in LibTorch 1.x,
// which is also the only place fp16 training runs.
class LossScaler {
 public:
  LossScaler(bool enabled, torch::Device device, double initial_scale = 65536.0, int64_t growth_interval = 2000);

  torch::Tensor scale(const torch::Tensor& loss) const { return enabled_ ? loss * scale_ : loss; }
  // Unscales the gradients in place; false when they hold inf/NaN (skip this optimizer step).
  bool unscale(const std::vector<torch::Tensor>& parameters);
  // Halves the scale after an overflow, doubles it after growth_interval clean steps.
  void update();
  bool enabled() const { return enabled_; }

  // [scale, clean steps] for a checkpoint, and back: a resumed fp16 run continues at the same scale.
  torch::Tensor state() const;
  void load_state(const torch::Tensor& state);

 private:
  bool enabled_;
  int64_t growth_interval_;
  torch::Tensor scale_;           // float [1] on the device
  torch::Tensor growth_tracker_;  // int32 [1]: clean steps since the scale last changed
  torch::Tensor found_inf_;       // float [1]: 1 when the last unscale() met inf/NaN
};

}  // namespace vit::app
