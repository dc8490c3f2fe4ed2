#include "data/loader.h"

#include "data/errors.h"

#include <spdlog/spdlog.h>
#include <opencv2/core/utility.hpp>

#include <algorithm>

namespace vit::data {

int64_t default_workers() {
  const auto cores = static_cast<int64_t>(std::max(1u, std::thread::hardware_concurrency()));
  return std::clamp<int64_t>(cores / 2, 1, 8);
}

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, Transform transform, LoaderOptions options)
    : dataset_(std::move(dataset)), transform_(std::move(transform)), options_(std::move(options)) {
  // Parallelism comes from the loader's own threads; OpenCV's pool inside each of them would
  // oversubscribe the cores that LibTorch's intra-op threads use.
  cv::setNumThreads(1);
  if (options_.bytes && (options_.mixup.enabled() || transform_.erases())) {
    throw std::invalid_argument("DataLoader: uint8 batches cannot carry mixup or random erasing");
  }
  worker_count_ = options_.workers > 0 ? options_.workers : default_workers();
  for (int64_t i = 0; i < worker_count_; ++i) workers_.emplace_back([this] { work(); });
}

DataLoader::~DataLoader() { stop(); }

void DataLoader::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
  }
  work_ready_.notify_all();
  result_ready_.notify_all();
  for (auto& worker : workers_) worker.join();
  workers_.clear();
}

int64_t DataLoader::batches_per_epoch() const { return data::batches_per_epoch(dataset_->size(), options_.sampler); }

int64_t DataLoader::skipped_samples() const {
  std::lock_guard lock(mutex_);
  return skipped_;
}

void DataLoader::start_epoch(int64_t epoch, int64_t first_step) {
  auto plan = std::make_shared<Epoch>(Epoch{epoch, epoch_indices(dataset_->size(), options_.sampler, epoch)});
  {
    std::lock_guard lock(mutex_);
    epoch_ = std::move(plan);
    ++generation_;
    ready_.clear();
    end_step_ = batches_per_epoch();
    next_claim_ = next_deliver_ = std::min(first_step, end_step_);
    skipped_ = 0;
  }
  work_ready_.notify_all();
}

std::optional<Batch> DataLoader::next() {
  std::unique_lock lock(mutex_);
  while (true) {
    if (stopping_ || next_deliver_ >= end_step_) return std::nullopt;
    result_ready_.wait(lock, [&] { return stopping_ || ready_.count(next_deliver_) > 0; });
    if (stopping_) return std::nullopt;
    auto result = std::move(ready_.at(next_deliver_));
    ready_.erase(next_deliver_++);
    work_ready_.notify_all();
    if (result.error) std::rethrow_exception(result.error);
    if (result.batch) return std::move(result.batch);
  }
}

void DataLoader::work() {
  std::unique_lock lock(mutex_);
  while (true) {
    work_ready_.wait(lock, [&] {
      return stopping_ ||
             (epoch_ && next_claim_ < end_step_ && next_claim_ < next_deliver_ + options_.prefetch_batches);
    });
    if (stopping_) return;
    const auto epoch = epoch_;
    const auto generation = generation_;
    const int64_t step = next_claim_++;
    lock.unlock();
    Result result;
    try {
      auto batch = build(*epoch, step);
      if (batch.images.size(0) > 0) result.batch = std::move(batch);
    } catch (...) {
      result.error = std::current_exception();
    }
    lock.lock();
    if (generation == generation_) {
      ready_[step] = std::move(result);
      result_ready_.notify_all();
    }
  }
}

bool DataLoader::load_sample(size_t index, void* out, int64_t epoch, ObjectBoxes* objects) {
  try {
    Random random(options_.sampler.seed, kAugmentStream, static_cast<uint64_t>(epoch), index);
    const auto image = dataset_->load(index, transform_.channels());
    if (objects != nullptr) *objects = dataset_->objects(index);
    if (options_.bytes) {
      transform_.apply_bytes(image, random, static_cast<uint8_t*>(out), objects);
    } else {
      transform_.apply(image, random, static_cast<float*>(out), objects);
    }
    return true;
  } catch (const DataError& error) {
    if (!options_.skip_bad_samples) throw;
    std::lock_guard lock(mutex_);
    ++skipped_;
    if (reported_bad_.insert(dataset_->describe(index)).second) spdlog::warn("skipping bad sample: {}", error.what());
    return false;
  } catch (const cv::Exception& error) {
    throw DataError(dataset_->describe(index) + ": " + error.err);
  }
}

torch::Tensor DataLoader::acquire_images(int64_t count) {
  const int64_t size = transform_.size();
  const int64_t channels = transform_.channels();
  std::lock_guard lock(mutex_);
  for (const auto& buffer : image_buffers_) {
    // Only the pool refers to it: no batch, view or autograd graph still uses the memory.
    if (buffer.size(0) == count && buffer.use_count() == 1 && buffer.storage().use_count() == 1) return buffer;
  }
  auto buffer = torch::empty({count, channels, size, size}, torch::TensorOptions()
                                                                .dtype(options_.bytes ? torch::kUInt8 : torch::kFloat32)
                                                                .pinned_memory(options_.pin_memory));
  if (image_buffers_.size() < static_cast<size_t>(buffer_pool_limit())) image_buffers_.push_back(buffer);
  return buffer;
}

int64_t DataLoader::buffer_pool_limit() const { return worker_count_ + options_.prefetch_batches + 2; }

int64_t DataLoader::sample_bytes() const {
  const int64_t size = transform_.size();
  return transform_.channels() * size * size * (options_.bytes ? 1 : static_cast<int64_t>(sizeof(float)));
}

int64_t DataLoader::batch_buffer_bytes() const {
  return buffer_pool_limit() * options_.sampler.batch_size * sample_bytes();
}

Batch DataLoader::build(const Epoch& epoch, int64_t step) {
  const auto batch_size = options_.sampler.batch_size;
  const auto first = static_cast<size_t>(step * batch_size);
  const auto last = std::min(epoch.indices.size(), first + static_cast<size_t>(batch_size));
  const int64_t bytes_per_sample = sample_bytes();
  const int64_t size = transform_.size();

  Batch batch;
  batch.step = step;
  batch.images = acquire_images(static_cast<int64_t>(last - first));
  batch.labels = torch::empty({batch.images.size(0)}, torch::kInt64);
  batch.indices = torch::empty({batch.images.size(0)}, torch::kInt64);
  auto* images = static_cast<char*>(batch.images.data_ptr());
  int64_t* labels = batch.labels.data_ptr<int64_t>();
  int64_t* indices = batch.indices.data_ptr<int64_t>();
  int64_t filled = 0;
  const bool detection = dataset_->has_objects();
  std::vector<float> boxes;
  std::vector<int64_t> box_labels, box_counts;
  ObjectBoxes objects;
  for (size_t position = first; position < last; ++position) {
    const size_t index = epoch.indices[position];
    if (!load_sample(index, images + filled * bytes_per_sample, epoch.number, detection ? &objects : nullptr)) continue;
    labels[filled] = dataset_->label(index);
    indices[filled] = static_cast<int64_t>(index);
    ++filled;
    if (!detection) continue;
    for (const auto& object : objects) {
      boxes.insert(boxes.end(), {static_cast<float>((object.x0 + object.x1) / (2.0 * size)),
                                 static_cast<float>((object.y0 + object.y1) / (2.0 * size)),
                                 static_cast<float>((object.x1 - object.x0) / size),
                                 static_cast<float>((object.y1 - object.y0) / size)});
      box_labels.push_back(object.category);
    }
    box_counts.push_back(static_cast<int64_t>(objects.size()));
  }
  if (detection) {
    const auto count = static_cast<int64_t>(box_labels.size());
    batch.boxes = torch::from_blob(boxes.data(), {count, 4}, torch::kFloat32).clone();
    batch.box_labels = torch::from_blob(box_labels.data(), {count}, torch::kInt64).clone();
    batch.box_counts = torch::from_blob(box_counts.data(), {filled}, torch::kInt64).clone();
  }
  if (filled < batch.images.size(0)) {
    batch.images = batch.images.narrow(0, 0, filled);
    batch.labels = batch.labels.narrow(0, 0, filled);
    batch.indices = batch.indices.narrow(0, 0, filled);
  }
  if (options_.mixup.enabled() && filled > 0) {
    Random random(options_.sampler.seed, kMixStream, static_cast<uint64_t>(epoch.number), static_cast<uint64_t>(step));
    batch.targets = mix_batch(batch.images, batch.labels, options_.num_classes, options_.mixup, random);
  }
  return batch;
}

}  // namespace vit::data
