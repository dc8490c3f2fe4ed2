#include "app/train/training_step.h"

#include "app/train/autocast.h"
#include "app/train/detection_loss.h"
#include "app/train/ema.h"
#include "app/train/loss.h"
#include "app/train/optimization.h"
#include "app/train/teacher.h"
#include "models/core/registry.h"
#include "models/layers/drop_path.h"
#include "models/layers/dropout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <numeric>
#include <optional>

namespace vit::app {
namespace {

// The objects of images [begin, end) of a batch's (none where it has none).
models::DetectionTargets objects_of_images(const models::DetectionTargets& objects, int64_t begin, int64_t end) {
  if (objects.counts.empty()) return {};
  const auto first = objects.counts.begin();
  const int64_t offset = std::accumulate(first, first + begin, int64_t{0});
  const int64_t count = std::accumulate(first + begin, first + end, int64_t{0});
  return {objects.boxes.narrow(0, offset, count), objects.labels.narrow(0, offset, count),
          std::vector<int64_t>(first + begin, first + end)};
}

}  // namespace

TrainingStep::TrainingStep(models::ImageModel& model, torch::optim::Optimizer& optimizer, ModelEma* ema,
                           DataParallel& parallel, const TrainConfig& train, torch::Device device,
                           const Teacher* teacher, BatchShards shards)
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
      scaler_(train.amp == AmpMode::Fp16, device),
      shards_(shards),
      random_forward_(models::draws_random_numbers(*model)) {
  for (const auto& parameter : model_->parameters()) {
    if (parameter.requires_grad()) trainable_.push_back(parameter);
  }
}

void TrainingStep::accumulate(const MicroBatch& batch, bool completes_step) {
  torch::Tensor loss;
  if (shards_.count() > 1) {
    // The slices' gradients reach .grad only at the end, where finish_gradient_sync() reads them.
    parallel_.synchronize_next_backward(false);
    loss = accumulate_in_shards(batch);
  } else {
    if (gradients_spent_) optimizer_.zero_grad();
    parallel_.synchronize_next_backward(completes_step);
    loss = loss_of(batch, whole(batch));
    scaler_.scale(loss / static_cast<double>(train_.grad_accum_steps)).backward();
    loss = loss.detach();
  }
  loss_sum_ = loss_sum_.defined() ? loss_sum_ + loss : loss;
  gradients_spent_ = false;
}

TrainingStep::WholeMicroBatch TrainingStep::whole(const MicroBatch& batch) {
  WholeMicroBatch whole{batch.inputs.size(0), {1.0, 1.0}};
  if (detector_ != nullptr) {
    whole.normalizers = {box_normalizer(batch.objects),
                         class_weight_sum(batch.objects, detector_->num_queries(), train_.detection.eos_coef)};
  }
  return whole;
}

torch::Tensor TrainingStep::loss_of(const MicroBatch& batch, const WholeMicroBatch& whole) {
  AutocastGuard guard(device_, train_.amp == AmpMode::Fp16 ? torch::kFloat16 : torch::kBFloat16,
                      train_.amp != AmpMode::None);
  if (detector_ != nullptr) {
    const auto layers = train_.detection.aux_loss
                            ? detector_->detect_per_layer(batch.inputs)
                            : std::vector<models::DetectionModel::Predictions>{detector_->detect(batch.inputs)};
    return detection_loss(layers, batch.objects, train_.detection, whole.normalizers);
  }
  // Every other loss is a mean over rows, so the slices' means weighted by their rows make the batch's.
  const int64_t rows = batch.inputs.size(0);
  const auto mean = mean_loss_of(batch);
  return rows == whole.rows ? mean : mean * (static_cast<double>(rows) / static_cast<double>(whole.rows));
}

torch::Tensor TrainingStep::mean_loss_of(const MicroBatch& batch) {
  const auto& [inputs, labels, soft_targets, mask_noise, objects] = batch;
  if (masked_model_ != nullptr) return masked_model_->reconstruction_loss(inputs, mask_noise);
  if (teacher_ == nullptr) {
    return classification_loss(model_(inputs).to(torch::kFloat32), labels, soft_targets, train_.label_smoothing);
  }
  const auto outputs = model_->forward_train(inputs);
  const auto& distillation = train_.distillation;
  return (1.0 - distillation.alpha) *
             classification_loss(outputs.logits.to(torch::kFloat32), labels, soft_targets, train_.label_smoothing) +
         distillation.alpha * distillation_loss(outputs.distillation_logits.to(torch::kFloat32),
                                                teacher_->logits(inputs).to(torch::kFloat32), distillation.kind,
                                                distillation.tau);
}

torch::Tensor TrainingStep::accumulate_in_shards(const MicroBatch& batch) {
  const auto rows_if_defined = [](const torch::Tensor& tensor, int64_t begin, int64_t end) {
    return tensor.defined() ? tensor.slice(0, begin, end) : tensor;
  };
  const auto whole_batch = whole(batch);
  std::vector<std::vector<torch::Tensor>> gradients(static_cast<size_t>(shards_.count()));
  std::vector<torch::Tensor> losses(gradients.size());
  const auto seeds =
      random_forward_ ? torch::randint(int64_t{1} << 62, {shards_.count()}, torch::kLong) : torch::Tensor();
  shards_.run(whole_batch.rows, [&](int64_t shard, int64_t begin, int64_t end) {
    std::optional<models::LayerRandomness> randomness;
    if (seeds.defined()) {
      randomness.emplace(at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(seeds[shard].item<int64_t>())));
    }
    const MicroBatch slice{rows_if_defined(batch.inputs, begin, end), rows_if_defined(batch.labels, begin, end),
                           rows_if_defined(batch.soft_targets, begin, end),
                           rows_if_defined(batch.mask_noise, begin, end), objects_of_images(batch.objects, begin, end)};
    const auto loss = loss_of(slice, whole_batch);
    gradients[static_cast<size_t>(shard)] =
        torch::autograd::grad({scaler_.scale(loss / static_cast<double>(train_.grad_accum_steps))}, trainable_, {},
                              /*retain_graph=*/false, /*create_graph=*/false, /*allow_unused=*/true);
    losses[static_cast<size_t>(shard)] = loss.detach();
  });
  torch::NoGradGuard no_grad;
  auto loss = losses.front();
  for (size_t shard = 1; shard < losses.size() && losses[shard].defined(); ++shard) loss = loss + losses[shard];
  add_slice_gradients(gradients);
  return loss;
}

void TrainingStep::add_slice_gradients(const std::vector<std::vector<torch::Tensor>>& slice_gradients) {
  // Each parameter's gradient is the sum of its slices' in slice order, added to what .grad holds
  // from the step's earlier micro-batches, or written over a spent .grad in place (one
  // parameter-sized allocation fewer a step).
  struct Sum {
    std::vector<torch::Tensor> parts;
    bool adds_to_grad;
  };
  std::vector<Sum> sums;
  std::vector<torch::Tensor> destinations;  // sums[k] goes to destinations[k], a parameter's .grad
  for (size_t i = 0; i < trainable_.size(); ++i) {
    std::vector<torch::Tensor> parts;
    for (const auto& gradients : slice_gradients) {
      if (!gradients.empty() && gradients[i].defined()) parts.push_back(gradients[i]);
    }
    auto& grad = trainable_[i].mutable_grad();
    if (parts.empty()) {  // a parameter this loss does not reach, as backward() leaves it
      if (gradients_spent_ && grad.defined()) grad.zero_();
      continue;
    }
    const bool adds_to_grad = grad.defined() && !gradients_spent_;
    const bool reusable = grad.defined() && grad.is_contiguous() && grad.sizes() == parts.front().sizes() &&
                          grad.scalar_type() == parts.front().scalar_type();
    if (!adds_to_grad && !reusable) grad = at::empty_like(parts.front(), at::MemoryFormat::Contiguous);
    destinations.push_back(grad);
    sums.push_back({std::move(parts), adds_to_grad});
  }
  shards_.run_over_rows(destinations, [&](size_t k, int64_t begin, int64_t end) {
    const auto& [parts, adds_to_grad] = sums[k];
    const auto rows = [&](const torch::Tensor& tensor) { return rows_of(tensor, begin, end); };
    auto out = rows(destinations[k]);
    if (parts.size() == 1) {
      adds_to_grad ? out.add_(rows(parts[0])) : out.copy_(rows(parts[0]));
      return;
    }
    auto sum = adds_to_grad ? rows(parts[0]) + rows(parts[1]) : at::add_out(out, rows(parts[0]), rows(parts[1]));
    for (size_t part = 2; part < parts.size(); ++part) sum.add_(rows(parts[part]));
    if (adds_to_grad) out.add_(sum);
  });
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
  if (train_.grad_clip > 0.0) clip_gradient_norm(parameters, train_.grad_clip, shards_);
  set_learning_rate(optimizer_, lr, group_lr_scales_);
  if (finite_gradients) optimizer_.step();
  gradients_spent_ = true;
  scaler_.update();
  if (ema_ != nullptr) ema_->update(model_, shards_);
  return summary;
}

void TrainingStep::discard() {
  gradients_spent_ = true;
  loss_sum_ = torch::Tensor();
}

}  // namespace vit::app
