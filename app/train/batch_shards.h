#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

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
  // `count` slices, run by `count` threads of their own, each with `threads_per_slice` intra-op
  // threads (an OpenMP team of its own).
  explicit BatchShards(int64_t count, int threads_per_slice = 1);
  int64_t count() const { return count_; }
  int threads_per_slice() const { return threads_per_slice_; }
  // How many slices a batch of `rows` rows runs in: min(count, rows), at least 1.
  int64_t slices_for(int64_t rows) const;

  // Calls work(shard, begin, end) for the contiguous row ranges of a batch of `rows` rows
  // (min(count, rows) of them, sizes differing by at most one), all at once, each on a worker
  // thread of its own with the caller's grad mode and autocast state; returns when all are done.
  // The first exception thrown by a slice is rethrown here. One caller at a time: copies share
  // their workers.
  void run(int64_t rows, const std::function<void(int64_t shard, int64_t begin, int64_t end)>& work) const;

  // forward(slice) of each slice of `inputs`' rows, concatenated in slice order.
  torch::Tensor map(const torch::Tensor& inputs,
                    const std::function<torch::Tensor(const torch::Tensor&)>& forward) const;

  // The work of a step between its slices (their gradients' sums, clipping, the optimizer, the
  // EMA), one pass over every parameter, on the workers as run() runs slices: serial on the
  // calling thread, it would grow with the count of slices, i.e. of cores. Each worker takes the
  // tensors' elements laid end to end in an equal share of at least `share_elements` (a pass over
  // fewer runs on the calling thread: handing a worker a share of less than about a millisecond's
  // work costs more than it saves where a busy process holds the worker's core).
  //
  // work(tensor, begin, end) for rows [begin, end) of the first dimension of `tensors[tensor]`
  // (one row for a tensor without dimensions), every row once. A range that ends inside a tensor
  // ends at a multiple of 64 of its elements, so that an element-wise operator on a contiguous
  // tensor's range takes each element down the same vectorized or scalar path as on the whole
  // tensor: the same bits.
  void run_over_rows(const std::vector<torch::Tensor>& tensors,
                     const std::function<void(size_t tensor, int64_t begin, int64_t end)>& work,
                     int64_t share_elements = kShareElements) const;
  // work(tensor) for each of `tensors`, whole, on the worker whose share holds its first element.
  void run_over_tensors(const std::vector<torch::Tensor>& tensors, const std::function<void(size_t tensor)>& work,
                        int64_t share_elements = kShareElements) const;
  // An element-wise pass's share: 2^19 elements of an addition take about a millisecond here. With
  // its gradients' sums and norms on the workers, the default model (0.8 M parameters) lost 4 % of
  // its images/s beside a busy loop (3 alternating runs).
  static constexpr int64_t kShareElements = int64_t{1} << 19;

 private:
  // run() in `shards` slices (at most count_).
  void run_in(int64_t shards, int64_t rows, const std::function<void(int64_t, int64_t, int64_t)>& work) const;

  int64_t count_ = 1;
  int threads_per_slice_ = 1;
  std::shared_ptr<ShardWorkers> workers_;
  // Gives the calling thread back its LibTorch thread count when the last copy goes.
  std::shared_ptr<const void> caller_threads_;

  friend BatchShards batch_shards_for(torch::Device device, int threads, int64_t slices);
};

// Rows [begin, end) of `tensor`'s first dimension, as run_over_rows hands them out (a tensor
// without dimensions: itself).
torch::Tensor rows_of(const torch::Tensor& tensor, int64_t begin, int64_t end);

// A defined, dense, contiguous CPU tensor: one whose elements a pass on the workers can view as
// one dimension and take in shares (the optimizers' and the EMA's passes; others take LibTorch's
// whole-tensor operators).
bool is_plain_cpu(const torch::Tensor& tensor);

// The slices for a batch on `device` run with `threads` intra-op threads: on the CPU `slices` of
// them (at most `threads`; 0: one per thread) of threads / slices threads each, none on a GPU
// (whose kernels are large already) or where LibTorch's OpenMP runtime cannot be told how many
// threads a thread's operators take. Where there are slices, the cores are theirs: while they
// exist (until the last copy goes) the calling thread's own operators (the loss, the passes too
// small to hand to the workers) run on one thread, since beside a busy process an operator
// divided among the cores spins at its barriers for a core that process holds
// (bench/contention.md).
BatchShards batch_shards_for(torch::Device device, int threads, int64_t slices = 0);

}  // namespace vit::app
