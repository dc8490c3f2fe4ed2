#pragma once

#include <torch/types.h>

#include <vector>

namespace vit::app {

// Dynamic loss scaling for fp16 training (what torch.cuda.amp.GradScaler does): the loss is
// multiplied by `scale` before backward so small fp16 gradients do not flush to zero; before the
// optimizer step the gradients are divided back, and a step whose gradients overflowed is
// skipped and the scale halved. After `growth_interval` clean steps the scale doubles.
class LossScaler {
 public:
  explicit LossScaler(bool enabled, double initial_scale = 65536.0, int64_t growth_interval = 2000);

  torch::Tensor scale(const torch::Tensor& loss) const { return enabled_ ? loss * scale_ : loss; }
  // Unscales the gradients in place; false when they hold inf/NaN (skip this optimizer step).
  bool unscale(const std::vector<torch::Tensor>& parameters);
  void update(bool stepped);
  bool enabled() const { return enabled_; }
  double current_scale() const { return scale_; }

 private:
  bool enabled_;
  double scale_;
  int64_t growth_interval_;
  int64_t clean_steps_ = 0;
};

}  // namespace vit::app
