#include "app/train/batch_shards.h"

#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>

#include <dlfcn.h>

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
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

// Threads that each run one of a batch's slices with one intra-op thread. The caller sleeps
// until they are done, so a slice never competes with the thread that handed it out.
class ShardWorkers {
 public:
  explicit ShardWorkers(int64_t count) {
    for (int64_t index = 0; index < count; ++index) threads_.emplace_back([this, index] { serve(index); });
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
  void serve(int64_t index) {
    (void)at::get_num_threads();  // LibTorch sets this thread's OpenMP count once, at its first use
    omp_set_num_threads_of_runtime()(1);
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

BatchShards::BatchShards(int64_t count) : count_(count) {
  if (count < 1) throw std::invalid_argument("BatchShards: the count must be at least 1");
  if (count > 1) workers_ = std::make_shared<ShardWorkers>(count);
}

void BatchShards::run(int64_t rows, const std::function<void(int64_t, int64_t, int64_t)>& work) const {
  const int64_t shards = slices_of(count_, rows);
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
  std::vector<torch::Tensor> outputs(static_cast<size_t>(slices_of(count_, inputs.size(0))));
  run(inputs.size(0), [&](int64_t shard, int64_t begin, int64_t end) {
    outputs[static_cast<size_t>(shard)] = forward(inputs.slice(0, begin, end));
  });
  return outputs.size() == 1 ? outputs.front() : torch::cat(outputs);
}

BatchShards batch_shards_for(torch::Device device, int threads) {
  if (!device.is_cpu() || threads <= 1 || omp_set_num_threads_of_runtime() == nullptr) return BatchShards();
  at::set_num_threads(1);
  return BatchShards(threads);
}

}  // namespace vit::app
