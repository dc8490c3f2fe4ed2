#include "app/train/batch_shards.h"

#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>

#include <dlfcn.h>

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <numeric>
#include <stdexcept>
#include <thread>
#include <vector>

namespace vit::app {

namespace {

// LibTorch's OpenMP runtime keeps a thread count per thread; LibTorch's own setter would change
// the process-wide default too. Looked up at run time: the runtime is LibTorch's dependency, not ours.
using SetOmpThreads = void(int);
SetOmpThreads* omp_set_num_threads_of_runtime() {
  static SetOmpThreads* const set = reinterpret_cast<SetOmpThreads*>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  return set;
}

// The slices a batch of `rows` rows is cut into: at most one per row.
int64_t slices_of(int64_t count, int64_t rows) { return std::max<int64_t>(1, std::min(count, rows)); }

}  // namespace

// Threads that each run one of a batch's slices with the slice's intra-op threads. The caller sleeps
// until they are done, so a slice never competes with the thread that handed it out.
class ShardWorkers {
 public:
  ShardWorkers(int64_t count, int threads_per_slice) {
    for (int64_t index = 0; index < count; ++index) {
      threads_.emplace_back([this, index, threads_per_slice] { serve(index, threads_per_slice); });
    }
  }
  ~ShardWorkers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& thread : threads_) thread.join();
  }
  ShardWorkers(const ShardWorkers&) = delete;
  ShardWorkers& operator=(const ShardWorkers&) = delete;

  // Runs task(worker) on workers 0 .. active - 1 and waits for them.
  void run(int64_t active, const std::function<void(int64_t worker)>& task) {
    std::unique_lock<std::mutex> lock(mutex_);
    task_ = &task;
    active_ = active;
    pending_ = active;
    ++generation_;
    wake_.notify_all();
    done_.wait(lock, [&] { return pending_ == 0; });
    task_ = nullptr;
  }

 private:
  void serve(int64_t index, int threads) {
    (void)at::get_num_threads();  // LibTorch sets this thread's OpenMP count once, at its first use
    omp_set_num_threads_of_runtime()(threads);
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mutex_);
    while (true) {
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      if (index >= active_) continue;
      const auto* task = task_;
      lock.unlock();
      (*task)(index);
      lock.lock();
      if (--pending_ == 0) done_.notify_one();
    }
  }

  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(int64_t)>* task_ = nullptr;
  int64_t active_ = 0;
  int64_t pending_ = 0;
  uint64_t generation_ = 0;
  bool stopping_ = false;
};

BatchShards::BatchShards() = default;

BatchShards::BatchShards(int64_t count, int threads_per_slice) : count_(count), threads_per_slice_(threads_per_slice) {
  if (count < 1 || threads_per_slice < 1) {
    throw std::invalid_argument("BatchShards: the count and the threads of a slice must be at least 1");
  }
  if (count > 1) workers_ = std::make_shared<ShardWorkers>(count, threads_per_slice);
}

int64_t BatchShards::slices_for(int64_t rows) const { return slices_of(count_, rows); }

void BatchShards::run(int64_t rows, const std::function<void(int64_t, int64_t, int64_t)>& work) const {
  run_in(slices_for(rows), rows, work);
}

void BatchShards::run_in(int64_t shards, int64_t rows,
                         const std::function<void(int64_t, int64_t, int64_t)>& work) const {
  if (shards == 1) {
    work(0, 0, rows);
    return;
  }
  const auto begin_of = [&](int64_t shard) { return shard * rows / shards; };
  // Worker threads start with their own grad mode and autocast state, not the caller's.
  const at::ThreadLocalState caller_state;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(shards));
  workers_->run(shards, [&](int64_t shard) {
    const at::ThreadLocalStateGuard state(caller_state);
    try {
      work(shard, begin_of(shard), begin_of(shard + 1));
    } catch (...) {
      errors[static_cast<size_t>(shard)] = std::current_exception();
    }
  });
  for (const auto& error : errors) {
    if (error) std::rethrow_exception(error);
  }
}

torch::Tensor BatchShards::map(const torch::Tensor& inputs,
                               const std::function<torch::Tensor(const torch::Tensor&)>& forward) const {
  std::vector<torch::Tensor> outputs(static_cast<size_t>(slices_for(inputs.size(0))));
  run(inputs.size(0), [&](int64_t shard, int64_t begin, int64_t end) {
    outputs[static_cast<size_t>(shard)] = forward(inputs.slice(0, begin, end));
  });
  return outputs.size() == 1 ? outputs.front() : torch::cat(outputs);
}

namespace {

// The tensors' elements laid end to end: tensor k holds [offsets[k], offsets[k + 1]).
std::vector<int64_t> element_offsets(const std::vector<torch::Tensor>& tensors) {
  std::vector<int64_t> offsets{0};
  offsets.reserve(tensors.size() + 1);
  for (const auto& tensor : tensors) offsets.push_back(offsets.back() + tensor.numel());
  return offsets;
}

int64_t row_count(const torch::Tensor& tensor) { return tensor.dim() == 0 ? 1 : tensor.size(0); }

// The first row of `tensor` (its elements from `offset`) that a share starting at element
// `share_begin` takes: rows are taken in steps of whole multiples of 64 elements.
int64_t first_row_of_share(const torch::Tensor& tensor, int64_t offset, int64_t share_begin) {
  const int64_t rows = row_count(tensor);
  if (share_begin <= offset) return 0;
  if (share_begin >= offset + tensor.numel()) return rows;
  const int64_t row_elements = tensor.numel() / rows;
  const int64_t rows_per_step = 64 / std::gcd<int64_t>(64, row_elements);
  const int64_t step_elements = rows_per_step * row_elements;
  const int64_t steps = (share_begin - offset + step_elements - 1) / step_elements;
  return std::min(rows, steps * rows_per_step);
}

}  // namespace

void BatchShards::run_over_rows(const std::vector<torch::Tensor>& tensors,
                                const std::function<void(size_t, int64_t, int64_t)>& work,
                                int64_t share_elements) const {
  const auto offsets = element_offsets(tensors);
  if (offsets.back() == 0) return;
  run_in(slices_of(count_, offsets.back() / share_elements), offsets.back(), [&](int64_t, int64_t begin, int64_t end) {
    for (size_t k = 0; k < tensors.size(); ++k) {
      if (tensors[k].numel() == 0) continue;
      const int64_t first = first_row_of_share(tensors[k], offsets[k], begin);
      const int64_t last = first_row_of_share(tensors[k], offsets[k], end);
      if (first < last) work(k, first, last);
    }
  });
}

void BatchShards::run_over_tensors(const std::vector<torch::Tensor>& tensors, const std::function<void(size_t)>& work,
                                   int64_t share_elements) const {
  const auto offsets = element_offsets(tensors);
  const int64_t total = offsets.back();
  // Tensors without elements at the very end belong to the last share; with no elements at all, one share runs them.
  run_in(slices_of(count_, total / share_elements), std::max<int64_t>(total, 1),
         [&](int64_t, int64_t begin, int64_t end) {
           for (size_t k = 0; k < tensors.size(); ++k) {
             if ((offsets[k] >= begin && offsets[k] < end) || (offsets[k] >= total && end >= total)) work(k);
           }
         });
}

torch::Tensor rows_of(const torch::Tensor& tensor, int64_t begin, int64_t end) {
  return tensor.dim() == 0 ? tensor : tensor.narrow(0, begin, end - begin);
}

bool is_plain_cpu(const torch::Tensor& tensor) {
  return tensor.defined() && tensor.device().is_cpu() && tensor.layout() == torch::kStrided && tensor.is_contiguous();
}

BatchShards batch_shards_for(torch::Device device, int threads, int64_t slices) {
  const int64_t count = slices > 0 ? std::min<int64_t>(slices, threads) : threads;
  if (!device.is_cpu() || count <= 1 || omp_set_num_threads_of_runtime() == nullptr) return BatchShards();
  BatchShards shards(count, static_cast<int>(threads / count));
  const int caller_threads = at::get_num_threads();
  at::set_num_threads(1);
  shards.caller_threads_ =
      std::shared_ptr<const void>(nullptr, [caller_threads](const void*) { at::set_num_threads(caller_threads); });
  return shards;
}

}  // namespace vit::app
