#pragma once

#include "app/config/config.h"
#include "app/train/batch_shards.h"
#include "models/inspect/complexity.h"

#include <torch/types.h>

namespace vit::app {

// The batch slices a training run on `device` with `threads` intra-op threads takes, its memory
// estimated and checked before the first step (`vit train` and `vit bench --mode train` alike):
// `train.batch_slices` as set, or where it is 0 one slice per thread, fewer where their gradients
// do not fit in the memory this process can still take (the most that do, dividing the threads).
// Logs the estimate; throws ConfigError when it exceeds the memory available, unless `force`
// (which also keeps a slice per thread). On a GPU the estimate is only logged: device memory is
// not measured here. `loader_bytes`: the data loaders' batch buffers.
BatchShards batch_shards_within_memory(const models::ModelComplexity& complexity, const TrainConfig& train,
                                       int64_t rank_batch_size, double loader_bytes, torch::Device device, int threads,
                                       bool force);

}  // namespace vit::app
