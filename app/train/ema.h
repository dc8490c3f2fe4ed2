#pragma once

#include "app/train/batch_shards.h"
#include "models/core/image_model.h"

namespace vit::app {

// Exponential moving average of a model's parameters (buffers copied), evaluated as its own
// model: ema = decay * ema + (1 - decay) * weights after every optimizer step.
class ModelEma {
 public:
  // `average` is a fresh model of the same architecture, which starts as a copy of `model`.
  ModelEma(models::ImageModel& model, models::ImageModel average, double decay);
  // On the CPU the update runs on `shards`' workers, each taking a share of the elements (the same
  // bits as one pass over all).
  void update(models::ImageModel& model, const BatchShards& shards = BatchShards());
  models::ImageModel& model() { return ema_; }

 private:
  double decay_;
  models::ImageModel ema_;
};

// Copies every parameter and buffer of `from` into `to` (same architecture).
void copy_weights(models::ImageModel& from, models::ImageModel& to);

}  // namespace vit::app
