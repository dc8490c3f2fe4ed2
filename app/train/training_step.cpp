#include "app/train/training_step.h"

#include "app/train/autocast.h"
#include "app/train/detection_loss.h"
#include "app/train/ema.h"
#include "app/train/loss.h"
#include "app/train/optimization.h"
#include "app/train/teacher.h"
#include "models/core/registry.h"

#include <algorithm>

namespace vit::app {

TrainingStep::TrainingStep(models::ImageModel& model, torch::optim::Optimizer& optimizer, ModelEma* ema,
                           DataParallel& parallel, const TrainConfig& train, torch::Device device,
                           const Teacher* teacher)
    : model_(model),
      optimizer_(optimizer),
      ema_(ema),
      teacher_(teacher),
      masked_model_(models::masked_image_model(model)),
      detector_(models::detection_model(model)),
      group_lr_scales_(group_lr_scales(model, train)),
      parallel_(parallel),
      train_(train),
      device_(device),
      scaler_(train.amp == AmpMode::Fp16, device) {}

void TrainingStep::accumulate(const MicroBatch& batch, bool completes_step) {
  const auto& [inputs, labels, soft_targets, mask_noise, objects] = batch;
  parallel_.synchronize_next_backward(completes_step);
  torch::Tensor loss;
  {
    AutocastGuard guard(device_, train_.amp == AmpMode::Fp16 ? torch::kFloat16 : torch::kBFloat16,
                        train_.amp != AmpMode::None);
    if (masked_model_ != nullptr) {
      loss = masked_model_->reconstruction_loss(inputs, mask_noise);
    } else if (detector_ != nullptr) {
      const auto layers = train_.detection.aux_loss
                              ? detector_->detect_per_layer(inputs)
                              : std::vector<models::DetectionModel::Predictions>{detector_->detect(inputs)};
      loss = detection_loss(layers, objects, train_.detection, box_normalizer(objects));
    } else if (teacher_ == nullptr) {
      loss = classification_loss(model_(inputs).to(torch::kFloat32), labels, soft_targets, train_.label_smoothing);
    } else {
      const auto outputs = model_->forward_train(inputs);
      const auto& distillation = train_.distillation;
      loss = (1.0 - distillation.alpha) *
                 classification_loss(outputs.logits.to(torch::kFloat32), labels, soft_targets, train_.label_smoothing) +
             distillation.alpha * distillation_loss(outputs.distillation_logits.to(torch::kFloat32),
                                                    teacher_->logits(inputs).to(torch::kFloat32), distillation.kind,
                                                    distillation.tau);
    }
  }
  scaler_.scale(loss / static_cast<double>(train_.grad_accum_steps)).backward();
  loss_sum_ = loss_sum_.defined() ? loss_sum_ + loss.detach() : loss.detach();
}

double TrainingStep::box_normalizer(const models::DetectionTargets& objects) {
  double count = 0.0;
  for (const int64_t objects_of_image : objects.counts) count += static_cast<double>(objects_of_image);
  if (parallel_.world_size() > 1) {
    auto total = torch::full({1}, count, torch::TensorOptions(device_).dtype(torch::kFloat64));
    parallel_.all_reduce_sum(total);
    count = total.item<double>() / static_cast<double>(parallel_.world_size());
  }
  return std::max(1.0, count);
}

DataParallel::StepSummary TrainingStep::apply(double lr, bool stop_requested) {
  parallel_.finish_gradient_sync();
  const auto summary =
      parallel_.summarize_step(loss_sum_ / static_cast<double>(train_.grad_accum_steps), stop_requested);
  loss_sum_ = torch::Tensor();
  const auto parameters = model_->parameters();
  // A step whose fp16 gradients overflowed is skipped, with a smaller loss scale.
  const bool finite_gradients = scaler_.unscale(parameters);
  if (train_.grad_clip > 0.0) clip_gradient_norm(parameters, train_.grad_clip);
  set_learning_rate(optimizer_, lr, group_lr_scales_);
  if (finite_gradients) optimizer_.step();
  optimizer_.zero_grad();
  scaler_.update();
  if (ema_ != nullptr) ema_->update(model_);
  return summary;
}

void TrainingStep::discard() {
  optimizer_.zero_grad();
  loss_sum_ = torch::Tensor();
}

}  // namespace vit::app
