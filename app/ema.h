#pragma once

#include "models/vision_transformer.h"

namespace vit::app {

// Exponential moving average of a model's parameters (buffers copied), evaluated as its own
// model: ema = decay * ema + (1 - decay) * weights after every optimizer step.
class ModelEma {
 public:
  ModelEma(models::VisionTransformer& model, double decay);
  void update(models::VisionTransformer& model);
  models::VisionTransformer& model() { return ema_; }

 private:
  double decay_;
  models::VisionTransformer ema_;
};

// Copies every parameter and buffer of `from` into `to` (same architecture).
void copy_weights(models::VisionTransformer& from, models::VisionTransformer& to);

}  // namespace vit::app
