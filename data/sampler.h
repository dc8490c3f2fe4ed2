#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vit::data {

struct SamplerOptions {
  int64_t batch_size = 1;
  bool shuffle = false;
  bool drop_last = false;
  uint64_t seed = 0;
  int64_t rank = 0;
  int64_t world_size = 1;
};

// The dataset indices one rank visits in one epoch, in order: a permutation drawn from
// (seed, epoch) when shuffling, the same for every worker count and rank, then the positions p
// with p % world_size == rank. Step s of a rank is positions [s B, (s+1) B) of its shard, so at
// every step the ranks' batches together form the single-rank batch of size world_size x B.
// With drop_last every rank gets floor(N / (world_size B)) full batches.
std::vector<size_t> epoch_indices(size_t dataset_size, const SamplerOptions& options, int64_t epoch);
int64_t batches_per_epoch(size_t dataset_size, const SamplerOptions& options);

}  // namespace vit::data
