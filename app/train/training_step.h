#pragma once

#include "app/config/config.h"
#include "app/distributed/distributed.h"
#include "app/train/batch_shards.h"
#include "app/train/detection_loss.h"
#include "app/train/loss_scaler.h"
#include "models/core/detection_model.h"
#include "models/core/image_model.h"
#include "models/core/masked_image_model.h"

#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <vector>

namespace vit::app {

class ModelEma;
class Teacher;

// One optimizer step, as `vit train` runs it and `vit bench --mode train` measures it. For each
// micro-batch: the autocast forward, the fp32 loss and the (loss-scaled) backward, gradients
// adding up. Then: the rank average of the gradients, unscaling, clipping, the optimizer step at
// the schedule's learning rate, the loss scale's update and the EMA. Nothing here waits for the
// device, except fp16's one read of the overflow flag that decides whether the step is taken.
// With a teacher (train.distillation), the loss is (1 - alpha) x the label loss of the class head
// + alpha x the teacher term of the distillation head, the teacher seeing the same (mixed) batch.
// A masked-image-modelling model (MAE) learns from the images alone: its reconstruction loss. A
// detector (DETR) learns from the objects: its set loss (detection_loss.h).
// With more than one batch shard, each slice of a micro-batch runs its forward and backward on
// its own core and the slices' gradients, weighted by their share of the rows, are added in slice
// order: the same loss as the whole batch's. A model whose training forward draws random numbers
// (dropout, drop path) gives each slice a generator of its own, seeded from the default one, so
// that the slices' draws do not depend on their timing. A detector's slices match their own images'
// objects and divide their loss sums by the whole micro-batch's normalizers.
class TrainingStep {
 public:
  // `teacher`: null without distillation.
  TrainingStep(models::ImageModel& model, torch::optim::Optimizer& optimizer, ModelEma* ema, DataParallel& parallel,
               const TrainConfig& train, torch::Device device, const Teacher* teacher, BatchShards shards);

  // What one micro-batch brings, on the device.
  struct MicroBatch {
    torch::Tensor inputs;              // normalized images
    torch::Tensor labels;              // classification
    torch::Tensor soft_targets;        // mixup's, or undefined
    torch::Tensor mask_noise;          // masked image modelling: the noise that picks each image's hidden patches
    models::DetectionTargets objects;  // detection: the images' objects
  };
  // Forward and backward of one micro-batch. `completes_step`: the last micro-batch before
  // apply(), whose backward also averages the accumulated gradients over the ranks.
  void accumulate(const MicroBatch& batch, bool completes_step);
  // The optimizer step over the accumulated gradients. Returns what every rank agrees on: the
  // mean loss of the step's micro-batches (a 0-dim tensor on the device) and whether any rank
  // was asked to stop.
  DataParallel::StepSummary apply(double lr, bool stop_requested);
  // Drops the gradients and losses of micro-batches that will not reach an optimizer step.
  void discard();

  LossScaler& scaler() { return scaler_; }
  // How many slices a micro-batch runs in (1: whole).
  int64_t shards() const { return shards_.count(); }

 private:
  // What a slice's loss is scaled by to be its part of its micro-batch's loss: figures of the whole
  // micro-batch.
  struct WholeMicroBatch {
    int64_t rows;                          // a loss that is a mean over rows takes rows(slice) / rows
    DetectionLossNormalizers normalizers;  // a detector's loss divides its sums by these
  };
  WholeMicroBatch whole(const MicroBatch& batch);
  // The loss of `batch` (a micro-batch, or a slice of `whole`) under autocast, in fp32: the slices'
  // losses add up to the micro-batch's.
  torch::Tensor loss_of(const MicroBatch& batch, const WholeMicroBatch& whole);
  // The mean loss over the rows of a classifier's or masked image model's batch.
  torch::Tensor mean_loss_of(const MicroBatch& batch);
  // accumulate() of a micro-batch cut into shards_.
  torch::Tensor accumulate_in_shards(const MicroBatch& batch);
  // .grad from the slices' gradients (slice_gradients[slice][parameter], in trainable_'s order).
  void add_slice_gradients(const std::vector<std::vector<torch::Tensor>>& slice_gradients);

  models::ImageModel& model_;
  torch::optim::Optimizer& optimizer_;
  ModelEma* ema_;
  const Teacher* teacher_;
  models::MaskedImageModel* masked_model_;  // null for a classifier
  models::DetectionModel* detector_;        // null but for a detector
  // DETR's normalizer of the box losses: the micro-batch's objects, averaged over the ranks, at least 1.
  double box_normalizer(const models::DetectionTargets& objects);
  std::vector<double> group_lr_scales_;
  DataParallel& parallel_;
  const TrainConfig& train_;
  torch::Device device_;
  LossScaler scaler_;
  BatchShards shards_;
  std::vector<torch::Tensor> trainable_;  // the parameters that require gradients
  bool random_forward_;                   // the training forward draws random numbers
  torch::Tensor loss_sum_;                // over the micro-batches of the current step, on the device
  // The gradients in .grad belong to the last step and count as zero: the next micro-batch
  // overwrites them rather than zeroing them in one pass and adding to them in another.
  bool gradients_spent_ = true;
};

}  // namespace vit::app
