#pragma once

#include "app/config/config.h"
#include "app/train/batch_shards.h"
#include "models/core/image_model.h"

#include <torch/optim/optimizer.h>

#include <memory>
#include <vector>

namespace vit::app {

// AdamW (decoupled weight decay) or SGD with momentum, with two parameter groups: weights that
// decay, and biases, norms, pos_embed and cls_token that do not (as timm and DeiT do). Fine-tuning
// splits them further by learning-rate scale: the head apart when train.backbone_lr_scale != 1,
// one pair per layer with train.layer_decay < 1 (group_lr_scales lists the groups' scales).
// AdamW is FusedAdamW, its CPU pass divided among `shards`' threads (whole on the caller's by default).
std::unique_ptr<torch::optim::Optimizer> make_optimizer(models::ImageModel& model, const TrainConfig& train,
                                                        BatchShards shards = BatchShards());
// The learning-rate scale of each of make_optimizer's groups, in its order: backbone_lr_scale
// outside the head, times layer_decay^(layer_count - layer).
std::vector<double> group_lr_scales(models::ImageModel& model, const TrainConfig& train);

// The learning rate at every optimizer step: linear warmup from 0, then cosine to min_lr, step
// decay or constant. It depends on the step alone, so a resumed run needs only the step number.
class LrSchedule {
 public:
  LrSchedule(const TrainConfig& train, int64_t steps_per_epoch);
  double at(int64_t step) const;

 private:
  TrainConfig train_;
  int64_t steps_per_epoch_;
  int64_t warmup_steps_;
  int64_t total_steps_;
};

// Scales the gradients so that their global L2 norm is at most max_norm, as
// torch.nn.utils.clip_grad_norm_ does; on a GPU without reading the norm back to the host. On the
// CPU each gradient's norm and scaling run on one of `shards`' workers, a norm taken whole on one
// thread.
void clip_gradient_norm(const std::vector<torch::Tensor>& parameters, double max_norm,
                        const BatchShards& shards = BatchShards());

// lr x each group's scale (group_lr_scales) for every group.
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr, const std::vector<double>& group_scales);

}  // namespace vit::app
