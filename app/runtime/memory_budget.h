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
  double activations = 0.0;  // at the rank's batch size
  double per_image = 0.0;    // activation bytes of one image

  // The run's expected peak, and what it still has to allocate (MemAvailable already counts the rest).
  double total() const { return process + still_needed(); }
  double still_needed() const { return weights + optimizer_state + ema + activations; }
  std::string describe() const;
};

// Measured against peak RSS on the CPU (fp32): the default Fashion-MNIST model 0.73 MiB per image
// (estimate 0.75), ViT-Ti/16 36.9 MiB (estimate 36.6); bf16 autocast keeps less.
MemoryEstimate estimate_training_memory(const models::ModelComplexity& complexity, const TrainConfig& train,
                                        int64_t rank_batch_size);

// Memory this process can still take: the kernel's MemAvailable, lowered to what the cgroup's
// memory.max leaves, shared among the local ranks of a data-parallel job (LOCAL_WORLD_SIZE);
// VIT_AVAILABLE_MEMORY_MB replaces the measurement (tests). Empty when it cannot be read.
std::optional<double> available_memory_bytes();

// "812.3 MiB", "23.05 GiB".
std::string human_bytes(double bytes);

// Throws ConfigError naming train.batch_size (with the batch size that would fit) when the
// estimate exceeds the available memory.
void check_training_memory(const MemoryEstimate& estimate, double available, int64_t rank_batch_size);

}  // namespace vit::app
