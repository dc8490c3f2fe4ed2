#include "app/train/evaluation.h"

#include "app/train/autocast.h"
#include "app/train/device_input.h"
#include "data/mask_noise.h"
#include "models/core/registry.h"

#include <torch/nn/functional/loss.h>

#include <cmath>

namespace vit::app {

std::vector<double> EvalResult::per_class_accuracy() const {
  const auto counts = confusion_counts();
  std::vector<double> accuracy;
  for (size_t c = 0; c < counts.size(); ++c) {
    int64_t total = 0;
    for (const int64_t count : counts[c]) total += count;
    accuracy.push_back(total > 0 ? static_cast<double>(counts[c][c]) / static_cast<double>(total) : 0.0);
  }
  return accuracy;
}

std::vector<std::vector<int64_t>> EvalResult::confusion_counts() const {
  const auto cells = confusion.to(torch::kCPU, torch::kInt64).contiguous();  // one transfer
  const auto classes = static_cast<size_t>(cells.size(0));
  const int64_t* data = cells.data_ptr<int64_t>();
  std::vector<std::vector<int64_t>> counts(classes);
  for (size_t r = 0; r < classes; ++r) counts[r].assign(data + r * classes, data + (r + 1) * classes);
  return counts;
}

EvalResult evaluate(models::ImageModel& model, data::DataLoader& loader, int64_t num_classes, torch::Device device,
                    bool bf16_autocast) {
  const bool was_training = model->is_training();
  model->eval();
  torch::NoGradGuard no_grad;
  const int64_t k = std::min<int64_t>(5, num_classes);
  // The sums stay on the device until the end: one read-back for the whole pass.
  const auto counts = torch::TensorOptions(device).dtype(torch::kInt64);
  auto confusion = torch::zeros({num_classes * num_classes}, counts);
  auto loss_sum = torch::zeros({}, torch::TensorOptions(device).dtype(torch::kFloat64));
  auto top1 = torch::zeros({}, counts);
  auto topk = torch::zeros({}, counts);
  EvalResult result;
  const DeviceInput to_input(loader.transform().mean(), loader.transform().std(), device);
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    const auto labels = batch->labels.to(device);
    torch::Tensor logits;
    {
      AutocastGuard autocast(device, torch::kBFloat16, bf16_autocast);
      logits = model(to_input(batch->images));
    }
    logits = logits.to(torch::kFloat32);
    loss_sum += torch::nn::functional::cross_entropy(
        logits, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
    const auto best = std::get<1>(logits.topk(k, 1));
    const auto hits = best.eq(labels.unsqueeze(1));
    top1 += hits.select(1, 0).sum();
    topk += hits.any(1).sum();
    confusion.index_add_(0, labels * num_classes + best.select(1, 0), torch::ones_like(labels));
    result.samples += labels.size(0);
  }
  if (was_training) model->train();
  const auto n = static_cast<double>(std::max<int64_t>(1, result.samples));
  const auto totals = torch::stack({loss_sum, top1.to(torch::kFloat64), topk.to(torch::kFloat64)}).cpu();
  result.loss = totals[0].item<double>() / n;
  result.top1 = totals[1].item<double>() / n;
  result.top5 = totals[2].item<double>() / n;
  result.confusion = confusion.view({num_classes, num_classes}).cpu();
  return result;
}

EvalResult evaluate_reconstruction(models::ImageModel& model, data::DataLoader& loader, uint64_t seed,
                                   torch::Device device, bool bf16_autocast) {
  auto* masked = models::masked_image_model(model);
  const bool was_training = model->is_training();
  model->eval();
  torch::NoGradGuard no_grad;
  auto loss_sum = torch::zeros({}, torch::TensorOptions(device).dtype(torch::kFloat64));
  EvalResult result;
  const DeviceInput to_input(loader.transform().mean(), loader.transform().std(), device);
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    const auto noise = data::mask_noise(batch->indices, seed, 0, masked->mask_noise_size()).to(device);
    AutocastGuard autocast(device, torch::kBFloat16, bf16_autocast);
    // Every image hides as many patches: the batch's mean is the mean of its images' losses.
    const auto size = batch->images.size(0);
    loss_sum += masked->reconstruction_loss(to_input(batch->images), noise).to(torch::kFloat64) * size;
    result.samples += size;
  }
  if (was_training) model->train();
  result.loss = loss_sum.item<double>() / static_cast<double>(std::max<int64_t>(1, result.samples));
  return result;
}

EvalResult combine_ranks(const EvalResult& local, DataParallel& parallel) {
  if (parallel.world_size() == 1) return local;
  const auto n = static_cast<double>(local.samples);
  auto sums = torch::tensor({local.loss * n, local.top1 * n, local.top5 * n, n}, torch::kFloat64);
  parallel.all_reduce_sum(sums);
  auto confusion = local.confusion.defined() ? local.confusion.clone() : torch::Tensor();
  if (confusion.defined()) parallel.all_reduce_sum(confusion);
  EvalResult total;
  total.samples = static_cast<int64_t>(std::llround(sums[3].item<double>()));
  const double count = std::max(1.0, sums[3].item<double>());
  total.loss = sums[0].item<double>() / count;
  total.top1 = sums[1].item<double>() / count;
  total.top5 = sums[2].item<double>() / count;
  total.confusion = confusion;
  return total;
}

}  // namespace vit::app
