#pragma once

#include "app/config/config.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/sources.h"

#include <memory>

namespace vit::app {

// How one consumer (training, evaluation, a benchmark) wants its batches.
struct LoaderRequest {
  int64_t batch_size = 1;
  bool training = false;  // shuffle, drop_last, train transforms
  uint64_t seed = 0;
  int64_t rank = 0;
  int64_t world_size = 1;
  int64_t workers = 0;  // 0: data.workers from the config
  // The batches' destination: CUDA gets pinned (and, where the pipeline allows, uint8) batches.
  torch::Device device{torch::kCPU};
};

data::Transform make_transform(const Config& config, bool training);
std::unique_ptr<data::DataLoader> make_loader(const Config& config, std::shared_ptr<const data::Dataset> dataset,
                                              const LoaderRequest& request);
// The datasets of config.data, checked against the model (class count; labels unless it is
// pretrained on images alone); throws ConfigError when the model cannot be trained on them.
data::DataSplits open_checked_datasets(const Config& config);

}  // namespace vit::app
