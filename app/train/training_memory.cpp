#include "app/train/training_memory.h"

#include "app/runtime/memory_budget.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace vit::app {

BatchShards batch_shards_within_memory(const models::ModelComplexity& complexity, const TrainConfig& train,
                                       int64_t rank_batch_size, double loader_bytes, torch::Device device, int threads,
                                       bool force) {
  const auto available = device.is_cpu() ? available_memory_bytes() : std::nullopt;
  const bool memory_known = available.has_value();
  const double available_bytes = memory_known ? *available : 0.0;
  const bool check_memory = memory_known && !force;
  int64_t slices = train.batch_slices;
  if (slices == 0 && check_memory) {
    slices = slices_that_fit(complexity, train, rank_batch_size, loader_bytes, threads, available_bytes);
    if (slices < threads) {
      spdlog::info(
          "memory: the gradients of a batch slice per thread do not fit in the {} available: {} "
          "(train.batch_slices sets the count)",
          human_bytes(available_bytes),
          slices == 1 ? "the batch runs whole" : fmt::format("{} slices of {} threads each", slices, threads / slices));
    }
  }
  auto shards = batch_shards_for(device, threads, slices);
  const auto memory =
      estimate_training_memory(complexity, train, rank_batch_size, shards.slices_for(rank_batch_size), loader_bytes);
  spdlog::info("memory: an estimated peak of {}{}", memory.describe(),
               memory_known ? "; " + human_bytes(available_bytes) + " available" : "");
  if (check_memory) check_training_memory(memory, available_bytes, rank_batch_size);
  return shards;
}

}  // namespace vit::app
