#pragma once

// Data-parallel training on PyTorch's c10d process groups (Gloo on the CPU, NCCL on CUDA). The
// c10d headers stay inside distributed.cpp; this header only names what the training loop needs.

#include "app/config/config.h"

#include <torch/nn/module.h>
#include <torch/types.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace vit::app {

// The rank's place in the job, from the variables torchrun, SLURM wrappers and Kubernetes'
// PyTorchJob set: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT. Without WORLD_SIZE (or
// with WORLD_SIZE=1) the process is a job of one. Throws ConfigError naming a malformed variable.
struct RankEnvironment {
  int64_t rank = 0;
  int64_t world_size = 1;
  int64_t local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};
RankEnvironment read_rank_environment();

// A failed rendezvous or collective: another rank died, or nobody answered within the timeout.
class DistributedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One rank's connection to the others. With a world of one every operation is a no-op, so the
// training loop reads the same for one process and for many.
class DataParallel {
 public:
  // Joins the job described by `environment` through a c10d TCPStore at MASTER_ADDR:MASTER_PORT
  // (rank 0 hosts it); throws DistributedError when the others do not arrive within the timeout.
  DataParallel(const RankEnvironment& environment, const DistributedConfig& config, torch::Device device);
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  int64_t world_size() const { return environment_.world_size; }
  int64_t rank() const { return environment_.rank; }
  // "gloo", "nccl", or "none" for a world of one.
  std::string backend() const;

  // Rank 0's parameters and buffers, copied into every rank's `module`.
  void broadcast_from_main(torch::nn::Module& module);
  // Element-wise sum over ranks, in place (float64 and int64 tensors included).
  void all_reduce_sum(torch::Tensor& tensor);

  // What all ranks agree on after an optimizer step: the mean of their losses (a 0-dim tensor on
  // the device) and whether any of them was asked to stop, so they all stop at the same step.
  // A world of one returns its own values without waiting for the device.
  struct StepSummary {
    torch::Tensor mean_loss;
    bool stop_requested = false;
  };
  StepSummary summarize_step(const torch::Tensor& loss, bool stop_requested);
  // Registers gradient hooks that all-reduce `parameters`' gradients in flat buckets of
  // train.distributed.bucket_mb while backward is still running.
  void attach_gradient_buckets(const std::vector<torch::Tensor>& parameters);
  // Before a backward pass: whether its gradients (added to those already accumulated) are to be
  // averaged over ranks; off for the micro-batches that only accumulate.
  void synchronize_next_backward(bool synchronize);
  // After a synchronized backward pass: waits for the buckets and writes the rank average into
  // every parameter's .grad.
  void finish_gradient_sync();

 private:
  struct Group;
  struct Buckets;
  RankEnvironment environment_;
  DistributedConfig config_;
  std::unique_ptr<Group> group_;
  std::unique_ptr<Buckets> buckets_;
};

}  // namespace vit::app
