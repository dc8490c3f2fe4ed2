#include "data/sampler.h"

#include "data/random.h"

#include <numeric>
#include <utility>

namespace vit::data {

int64_t batches_per_epoch(size_t dataset_size, const SamplerOptions& options) {
  const auto size = static_cast<int64_t>(dataset_size);
  if (options.drop_last) return size / (options.world_size * options.batch_size);
  const int64_t shard = (size - options.rank + options.world_size - 1) / options.world_size;
  return (shard + options.batch_size - 1) / options.batch_size;
}

std::vector<size_t> epoch_indices(size_t dataset_size, const SamplerOptions& options, int64_t epoch) {
  std::vector<size_t> order(dataset_size);
  if (options.shuffle) {
    Random random(options.seed, kShuffleStream, static_cast<uint64_t>(epoch), 0);
    order = random_permutation(dataset_size, random);
  } else {
    std::iota(order.begin(), order.end(), size_t{0});
  }
  std::vector<size_t> shard;
  for (size_t p = static_cast<size_t>(options.rank); p < dataset_size; p += static_cast<size_t>(options.world_size)) {
    shard.push_back(order[p]);
  }
  const auto kept = static_cast<size_t>(std::min<int64_t>(
      static_cast<int64_t>(shard.size()), batches_per_epoch(dataset_size, options) * options.batch_size));
  shard.resize(kept);
  return shard;
}

}  // namespace vit::data
