#include "app/train/evaluation.h"

#include "app/train/autocast.h"
#include "app/train/device_input.h"
#include "data/mask_noise.h"
#include "models/core/registry.h"
#include "models/detection/box_ops.h"

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

torch::Tensor evaluation_forward(models::ImageModel& model, const torch::Tensor& images, torch::Device device,
                                 bool bf16_autocast, const BatchShards& shards) {
  return shards.map(images, [&](const torch::Tensor& slice) {
    AutocastGuard autocast(device, torch::kBFloat16, bf16_autocast);
    return model(slice);
  });
}

EvalResult evaluate(models::ImageModel& model, data::DataLoader& loader, int64_t num_classes, torch::Device device,
                    bool bf16_autocast, const BatchShards& shards) {
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
    const auto logits =
        evaluation_forward(model, to_input(batch->images), device, bf16_autocast, shards).to(torch::kFloat32);
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
                                   torch::Device device, bool bf16_autocast, const BatchShards& shards) {
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
    const auto images = to_input(batch->images);
    // Every image hides as many patches: a slice's mean is the mean of its images' losses.
    std::vector<torch::Tensor> slice_sums(static_cast<size_t>(shards.count()));
    shards.run(images.size(0), [&](int64_t shard, int64_t begin, int64_t end) {
      AutocastGuard autocast(device, torch::kBFloat16, bf16_autocast);
      slice_sums[static_cast<size_t>(shard)] =
          masked->reconstruction_loss(images.slice(0, begin, end), noise.slice(0, begin, end)).to(torch::kFloat64) *
          (end - begin);
    });
    for (const auto& sum : slice_sums) {
      if (sum.defined()) loss_sum += sum;
    }
    result.samples += images.size(0);
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

namespace {

BoxCorners corners(const float* box) { return {box[0], box[1], box[2], box[3]}; }

// Rows of `width` doubles: what one rank contributes to an all-reduced table.
torch::Tensor gather_rows(const std::vector<double>& rows, int64_t width, DataParallel& parallel) {
  const auto world = parallel.world_size();
  auto counts = torch::zeros({world}, torch::kFloat64);
  counts[parallel.rank()] = static_cast<double>(rows.size()) / static_cast<double>(width);
  parallel.all_reduce_sum(counts);
  const auto longest = static_cast<int64_t>(counts.max().item<double>());
  auto table = torch::zeros({world, longest, width}, torch::kFloat64);
  if (!rows.empty()) {
    table[parallel.rank()]
        .narrow(0, 0, static_cast<int64_t>(rows.size()) / width)
        .copy_(torch::tensor(rows, torch::kFloat64).view({-1, width}));
  }
  parallel.all_reduce_sum(table);
  std::vector<torch::Tensor> parts;
  for (int64_t r = 0; r < world; ++r)
    parts.push_back(table[r].narrow(0, 0, static_cast<int64_t>(counts[r].item<double>())));
  return torch::cat(parts).contiguous();
}

}  // namespace

DetectionSet collect_detections(models::ImageModel& model, data::DataLoader& loader, torch::Device device,
                                bool bf16_autocast, const BatchShards& shards) {
  auto* detector = models::detection_model(model);
  const bool was_training = model->is_training();
  model->eval();
  torch::NoGradGuard no_grad;
  DetectionSet result;
  const DeviceInput to_input(loader.transform().mean(), loader.transform().std(), device);
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    // Each slice's class logits [b, Q, C + 1] and boxes [b, Q, 4] side by side, for the slices to be
    // put together as one tensor.
    const auto predicted = shards.map(to_input(batch->images), [&](const torch::Tensor& slice) {
      AutocastGuard autocast(device, torch::kBFloat16, bf16_autocast);
      const auto predictions = detector->detect(slice);
      return torch::cat({predictions.logits, predictions.boxes}, -1);
    });
    const int64_t logits = predicted.size(-1) - 4;
    const auto [scores, classes] = models::object_scores(predicted.narrow(-1, 0, logits));
    const auto boxes = models::box_cxcywh_to_xyxy(predicted.narrow(-1, logits, 4)).to(torch::kCPU).contiguous();
    const auto score_cpu = scores.to(torch::kCPU).contiguous();
    const auto class_cpu = classes.to(torch::kCPU).contiguous();
    const auto truth = models::box_cxcywh_to_xyxy(batch->boxes).contiguous();
    const int64_t queries = boxes.size(1);
    const float* box_data = boxes.data_ptr<float>();
    const int64_t* counts = batch->box_counts.data_ptr<int64_t>();
    const int64_t* labels = batch->box_labels.data_ptr<int64_t>();
    int64_t object = 0;
    for (int64_t b = 0; b < boxes.size(0); ++b) {
      const int64_t image = batch->indices.data_ptr<int64_t>()[b];
      for (int64_t q = 0; q < queries; ++q) {
        const int64_t at = b * queries + q;
        result.detections.push_back(
            {image, class_cpu.data_ptr<int64_t>()[at], score_cpu.data_ptr<float>()[at], corners(box_data + 4 * at)});
      }
      for (int64_t i = 0; i < counts[b]; ++i, ++object) {
        result.objects.push_back({image, labels[object], corners(truth.data_ptr<float>() + 4 * object)});
      }
    }
    result.images += boxes.size(0);
  }
  if (was_training) model->train();
  return result;
}

DetectionSet combine_ranks(const DetectionSet& local, DataParallel& parallel) {
  if (parallel.world_size() == 1) return local;
  std::vector<double> detections, objects;
  for (const auto& d : local.detections) {
    detections.insert(detections.end(), {static_cast<double>(d.image), static_cast<double>(d.category), d.score,
                                         d.box[0], d.box[1], d.box[2], d.box[3]});
  }
  for (const auto& o : local.objects) {
    objects.insert(objects.end(), {static_cast<double>(o.image), static_cast<double>(o.category), o.box[0], o.box[1],
                                   o.box[2], o.box[3]});
  }
  DetectionSet total;
  const auto all_detections = gather_rows(detections, 7, parallel);
  const auto all_objects = gather_rows(objects, 6, parallel);
  const auto* d = all_detections.data_ptr<double>();
  for (int64_t i = 0; i < all_detections.size(0); ++i, d += 7) {
    total.detections.push_back(
        {static_cast<int64_t>(d[0]), static_cast<int64_t>(d[1]), d[2], {d[3], d[4], d[5], d[6]}});
  }
  const auto* o = all_objects.data_ptr<double>();
  for (int64_t i = 0; i < all_objects.size(0); ++i, o += 6) {
    total.objects.push_back({static_cast<int64_t>(o[0]), static_cast<int64_t>(o[1]), {o[2], o[3], o[4], o[5]}});
  }
  auto images = torch::full({1}, static_cast<double>(local.images), torch::kFloat64);
  parallel.all_reduce_sum(images);
  total.images = static_cast<int64_t>(images.item<double>());
  return total;
}

}  // namespace vit::app
