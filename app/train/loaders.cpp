#include "app/train/loaders.h"

#include "app/errors.h"
#include "app/train/device_input.h"
#include "data/sources.h"

#include <fmt/format.h>

namespace vit::app {

data::Transform make_transform(const Config& config, bool training) {
  const auto shape = models::shape_of(config.model.options);
  return data::Transform(training ? config.data.train_transforms : config.data.val_transforms,
                         static_cast<int>(shape.image_size), static_cast<int>(shape.in_chans));
}

std::unique_ptr<data::DataLoader> make_loader(const Config& config, std::shared_ptr<const data::Dataset> dataset,
                                              const LoaderRequest& request) {
  data::LoaderOptions options;
  options.sampler.batch_size = request.batch_size;
  options.sampler.shuffle = request.training;
  options.sampler.drop_last = request.training;
  options.sampler.seed = request.seed;
  options.sampler.rank = request.rank;
  options.sampler.world_size = request.world_size;
  options.workers = request.workers > 0 ? request.workers : config.data.workers;
  options.prefetch_batches = config.data.prefetch_batches;
  options.skip_bad_samples = config.data.on_bad_sample == data::BadSamplePolicy::Skip;
  options.num_classes = models::shape_of(config.model.options).num_classes;
  // Mixup/CutMix pair the images of each loader's batch: with data-parallel ranks, those of each
  // rank's share (as timm does); with gradient accumulation, those of each micro-batch.
  if (request.training) options.mixup = config.train.mixup;
  options.bytes = uint8_batches(config, request.training, request.device);
  options.pin_memory = request.device.is_cuda();
  return std::make_unique<data::DataLoader>(std::move(dataset), make_transform(config, request.training), options);
}

data::DataSplits open_checked_datasets(const Config& config) {
  auto splits = data::open_datasets(config.data);
  const auto objective = models::objective_of(config.model.options);
  const bool detector = objective == models::Objective::Detection;
  for (const auto* split : {&splits.train, &splits.val}) {
    if (*split && (*split)->has_objects() != detector) {
      throw ConfigError(fmt::format(
          detector
              ? "data.{}: model.arch {} detects objects; it trains on COCO-format data (source: coco)"
              : "data.{}: COCO detection data (source: coco) trains a detector (model.arch detr), not model.arch {}",
          split == &splits.train ? "train" : "val", config.model.options.arch()));
    }
  }
  if (objective == models::Objective::Classification) {
    for (const auto* split : {&splits.train, &splits.val}) {
      if (*split && !(*split)->labelled()) {
        throw ConfigError(
            fmt::format("data.{}: {} holds images without labels; only pretraining (model.arch mae) "
                        "learns from unlabeled images",
                        split == &splits.train ? "train" : "val", (*split)->describe(0)));
      }
    }
  }
  const auto classes = static_cast<int64_t>(splits.train->class_names().size());
  const auto num_classes = models::shape_of(config.model.options).num_classes;
  if (num_classes > 0 && classes > num_classes) {
    throw ConfigError("model.num_classes is " + std::to_string(num_classes) + " but the training data has " +
                      std::to_string(classes) + " classes");
  }
  return splits;
}

}  // namespace vit::app
