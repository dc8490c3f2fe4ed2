#pragma once

#include "data/dataset.h"
#include "data/mixup.h"
#include "data/sampler.h"
#include "data/transforms.h"

#include <torch/types.h>

#include <condition_variable>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

namespace vit::data {

struct Batch {
  torch::Tensor images;   // float [B, C, H, W], normalized; uint8 pixels with LoaderOptions::bytes
  torch::Tensor labels;   // int64 [B]
  torch::Tensor targets;  // float [B, num_classes] soft targets when mixing, else undefined
  torch::Tensor indices;  // int64 [B] dataset indices, in batch order
  // Detection data: the images' objects after the transform, image after image: boxes float
  // [N, 4] as (cx, cy, w, h) in [0, 1] of the model's input, classes int64 [N], and how many
  // objects each image has, int64 [B]. Undefined for other data.
  torch::Tensor boxes;
  torch::Tensor box_labels;
  torch::Tensor box_counts;
  int64_t step = 0;  // batch number within the epoch
};

struct LoaderOptions {
  SamplerOptions sampler;
  int64_t workers = 0;            // 0: default_workers()
  int64_t prefetch_batches = 4;   // ready or in-flight batches ahead of the consumer
  bool skip_bad_samples = false;  // else the first bad sample ends the epoch with its DataError
  MixupOptions mixup;
  int64_t num_classes = 0;  // for mixup's soft targets
  // uint8 pixels instead of normalized floats (a quarter of the bytes to copy to a GPU, which then
  // normalizes); not with mixup or random erasing, which need float pixels.
  bool bytes = false;
  bool pin_memory = false;  // batch tensors in page-locked memory for asynchronous GPU copies
};

// Loader worker threads for this machine: half the cores (the other half runs LibTorch's
// intra-op threads), at least 1, at most 8.
int64_t default_workers();

// Batches of one dataset through one transform, assembled by worker threads that decode
// straight into each batch's preallocated tensor, at most prefetch_batches ahead. Batches come
// out in order; every random draw is seeded from (seed, epoch, sample index), so the data is the
// same for any worker count, world size or starting step.
class DataLoader {
 public:
  DataLoader(std::shared_ptr<const Dataset> dataset, Transform transform, LoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t batches_per_epoch() const;
  // Begins `epoch` at batch `first_step` (to resume mid-epoch), abandoning any unfinished epoch.
  void start_epoch(int64_t epoch, int64_t first_step = 0);
  // The next batch, or nullopt at the end of the epoch; rethrows a worker's DataError.
  std::optional<Batch> next();
  // Stops the workers; next() then returns nullopt. Idempotent, also done by the destructor.
  void stop();

  // Samples skipped as bad in the current epoch (with skip_bad_samples).
  int64_t skipped_samples() const;
  // The most memory the batches' pixels take: the buffers the loader keeps for reuse, each a whole
  // batch (ImageNet at 224 px, batch 128, 8 workers: 14 buffers of 77 MiB).
  int64_t batch_buffer_bytes() const;
  const Dataset& dataset() const { return *dataset_; }
  const Transform& transform() const { return transform_; }

 private:
  struct Epoch {
    int64_t number;
    std::vector<size_t> indices;
  };
  struct Result {
    std::optional<Batch> batch;  // empty when every sample of it was skipped
    std::exception_ptr error;
  };

  void work();
  Batch build(const Epoch& epoch, int64_t step);
  // A float [count, C, H, W] tensor, reusing one whose earlier batch nobody holds any more: fresh
  // large allocations cost a page fault per 4 KiB.
  torch::Tensor acquire_images(int64_t count);
  // How many batch buffers the loader keeps: enough for every worker and every batch ahead.
  int64_t buffer_pool_limit() const;
  // Bytes of one sample's pixels in a batch buffer.
  int64_t sample_bytes() const;
  // Writes the sample's pixels (float or uint8, per options_.bytes) at `out`.
  // With `objects` (detection data), the sample's objects after the transform.
  bool load_sample(size_t index, void* out, int64_t epoch, ObjectBoxes* objects);

  std::shared_ptr<const Dataset> dataset_;
  Transform transform_;
  LoaderOptions options_;
  int64_t worker_count_;
  std::vector<std::thread> workers_;

  mutable std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable result_ready_;
  std::shared_ptr<const Epoch> epoch_;
  uint64_t generation_ = 0;  // bumped by start_epoch so stale results are dropped
  int64_t next_claim_ = 0;
  int64_t next_deliver_ = 0;
  int64_t end_step_ = 0;
  std::map<int64_t, Result> ready_;
  bool stopping_ = false;
  int64_t skipped_ = 0;
  std::set<std::string> reported_bad_;
  std::vector<torch::Tensor> image_buffers_;
};

}  // namespace vit::data
