#pragma once

#include "app/config/config.h"
#include "models/inspect/complexity.h"

#include <optional>
#include <string>

namespace vit::app {

// What a training run will hold in memory, in bytes, estimated before the first step.
struct MemoryEstimate {
  double process = 0.0;          // what the process holds already (libraries, datasets in memory)
  double weights = 0.0;          // parameters, their gradients, and bf16/fp16 copies under autocast
  double optimizer_state = 0.0;  // AdamW's two moments, SGD's momentum
  double ema = 0.0;
  double loaders = 0.0;      // the data loaders' batch buffers
  double activations = 0.0;  // at the rank's batch size
  double per_image = 0.0;    // activation bytes of one image
  // Batch slices' own gradients, and under autocast their bf16/fp16 weight copies beyond the first.
  // Counted on top of the activations, though a slice's gradients grow as its backward frees its
  // activations: ViT-S/16, fp32, batch 16 in 16 slices (2 cores) peaked at 2,350 MiB against an
  // estimate of 3,113 (1,792 without the slices); in 2 slices at 1,763 against 1,956.
  double slices = 0.0;

  // The run's expected peak, and what it still has to allocate (MemAvailable already counts the rest).
  double total() const { return process + still_needed(); }
  double still_needed() const { return held_throughout() + activations + slices; }
  double held_throughout() const { return weights + optimizer_state + ema + loaders; }
  std::string describe() const;
};

// Measured against peak RSS on the CPU (fp32): the default Fashion-MNIST model 0.73 MiB per image
// (estimate 0.75), ViT-Ti/16 36.9 MiB (estimate 36.6); bf16 autocast keeps less.
// `slices`: how many slices a micro-batch runs in (BatchShards), each holding a set of gradients
// until they are added up, and under autocast a cast copy of the weights.
// `loader_bytes`: what the data loaders' batch buffers take (DataLoader::batch_buffer_bytes).
MemoryEstimate estimate_training_memory(const models::ModelComplexity& complexity, const TrainConfig& train,
                                        int64_t rank_batch_size, int64_t slices = 1, double loader_bytes = 0.0);

// How many slices a batch of `rank_batch_size` rows run by `threads` threads can be cut into where
// memory is short: the most slices (at most one per thread, dividing the threads so that each slice
// is a team of equal size and every thread has work) whose estimate fits in `available`; `threads`
// where none fits (check_training_memory then says what does not). Each slice beyond the first
// holds a set of gradients: ViT-S/16 on 64 cores, 64 copies of 88 MB.
int64_t slices_that_fit(const models::ModelComplexity& complexity, const TrainConfig& train, int64_t rank_batch_size,
                        double loader_bytes, int64_t threads, double available);

// Memory this process can still take: the kernel's MemAvailable, lowered to what the cgroup's
// memory.max leaves, shared among the local ranks of a data-parallel job (LOCAL_WORLD_SIZE);
// VIT_AVAILABLE_MEMORY_MB replaces the measurement (tests). Empty when it cannot be read.
std::optional<double> available_memory_bytes();

// "812.3 MiB", "23.05 GiB".
std::string human_bytes(double bytes);

// Throws ConfigError naming train.batch_size (with the batch size that would fit), and
// train.batch_slices where batch slices hold gradients of their own, when the estimate exceeds
// the available memory.
void check_training_memory(const MemoryEstimate& estimate, double available, int64_t rank_batch_size);

}  // namespace vit::app
