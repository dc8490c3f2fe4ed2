#include "app/evaluation.h"

#include "app/autocast.h"
#include "app/device_input.h"

#include <cmath>

namespace vit::app {

std::vector<double> EvalResult::per_class_accuracy() const {
  std::vector<double> accuracy;
  const auto rows = confusion.sum(1);
  for (int64_t c = 0; c < confusion.size(0); ++c) {
    const auto total = rows[c].item<int64_t>();
    accuracy.push_back(total > 0 ? static_cast<double>(confusion[c][c].item<int64_t>()) / static_cast<double>(total)
                                 : 0.0);
  }
  return accuracy;
}

EvalResult evaluate(models::VisionTransformer& model, data::DataLoader& loader, int64_t num_classes,
                    torch::Device device, bool bf16_autocast) {
  const bool was_training = model->is_training();
  model->eval();
  torch::NoGradGuard no_grad;
  const int64_t k = std::min<int64_t>(5, num_classes);
  auto confusion = torch::zeros({num_classes * num_classes}, torch::kInt64);
  double loss_sum = 0.0;
  int64_t top1 = 0;
  int64_t topk = 0;
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
                    logits, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    const auto best = std::get<1>(logits.topk(k, 1));
    const auto hits = best.eq(labels.unsqueeze(1));
    top1 += hits.select(1, 0).sum().item<int64_t>();
    topk += hits.any(1).sum().item<int64_t>();
    confusion.index_add_(0, (labels * num_classes + best.select(1, 0)).cpu(), torch::ones_like(labels.cpu()));
    result.samples += labels.size(0);
  }
  if (was_training) model->train();
  const auto n = static_cast<double>(std::max<int64_t>(1, result.samples));
  result.loss = loss_sum / n;
  result.top1 = static_cast<double>(top1) / n;
  result.top5 = static_cast<double>(topk) / n;
  result.confusion = confusion.view({num_classes, num_classes});
  return result;
}

EvalResult combine_ranks(const EvalResult& local, DataParallel& parallel) {
  if (parallel.world_size() == 1) return local;
  const auto n = static_cast<double>(local.samples);
  auto sums = torch::tensor({local.loss * n, local.top1 * n, local.top5 * n, n}, torch::kFloat64);
  parallel.all_reduce_sum(sums);
  auto confusion = local.confusion.clone();
  parallel.all_reduce_sum(confusion);
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
