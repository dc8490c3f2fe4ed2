#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>

namespace vit::app {

class ShardWorkers;

// Data parallelism inside the process, for the CPU. A small transformer's step is hundreds of
// small operators, each divided among the cores and ended by a barrier at which the cores wait
// for one another; cutting the batch into one slice per core and running each slice's operators
// whole on a core of its own (one OpenMP and BLAS thread) leaves out the barriers and the
// waiting (bench/results.md); beside a busy process a core shared with it slows one slice, not
// every operator of the step (bench/contention.md). The slices' results are put together in
// slice order, so the numbers depend on the number of slices, not on how many cores ran them.
class BatchShards {
 public:
  // One slice: the batch runs whole, its operators divided among LibTorch's threads.
  BatchShards();
  // `count` slices, run by `count` threads of their own.
  explicit BatchShards(int64_t count);
  int64_t count() const { return count_; }

  // Calls work(shard, begin, end) for the contiguous row ranges of a batch of `rows` rows
  // (min(count, rows) of them, sizes differing by at most one), all at once, each on a worker
  // thread of its own with the caller's grad mode and autocast state; returns when all are done.
  // The first exception thrown by a slice is rethrown here. One caller at a time: copies share
  // their workers.
  void run(int64_t rows, const std::function<void(int64_t shard, int64_t begin, int64_t end)>& work) const;

  // forward(slice) of each slice of `inputs`' rows, concatenated in slice order.
  torch::Tensor map(const torch::Tensor& inputs,
                    const std::function<torch::Tensor(const torch::Tensor&)>& forward) const;

 private:
  int64_t count_ = 1;
  std::shared_ptr<ShardWorkers> workers_;
};

// The slices for a batch on `device` run with `threads` intra-op threads: one per thread on the
// CPU, none on a GPU (whose kernels are large already) or where LibTorch's OpenMP runtime cannot
// be told to run a thread's operators alone. Where there are slices, the cores are theirs: the
// calling thread's own operators (the work between the slices: the sums of their gradients, the
// norms, the loss) run on one thread from then on, since beside a busy process an operator
// divided among the cores spins at its barriers for a core that process holds
// (bench/contention.md).
BatchShards batch_shards_for(torch::Device device, int threads);

}  // namespace vit::app
