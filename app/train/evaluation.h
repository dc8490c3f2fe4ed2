#pragma once

#include "app/distributed/distributed.h"
#include "app/train/batch_shards.h"
#include "app/train/mean_average_precision.h"
#include "data/loader.h"
#include "models/core/image_model.h"

#include <vector>

namespace vit::app {

struct EvalResult {
  int64_t samples = 0;
  double loss = 0.0;        // mean cross-entropy (masked image modelling: reconstruction loss)
  double top1 = 0.0;        // fractions in [0, 1]
  double top5 = 0.0;        // top-min(5, classes)
  torch::Tensor confusion;  // int64 [classes, classes]: row = true class, column = prediction; classifiers only

  std::vector<double> per_class_accuracy() const;
  // The confusion matrix as counts[true][predicted], read back in one transfer.
  std::vector<std::vector<int64_t>> confusion_counts() const;
};

// The model's output for `images` as evaluation computes it: each of `shards`' slices under bf16
// autocast when asked, concatenated. The caller sets eval mode and no-grad.
torch::Tensor evaluation_forward(models::ImageModel& model, const torch::Tensor& images, torch::Device device,
                                 bool bf16_autocast, const BatchShards& shards);

// One pass over the loader's current-epoch batches in eval mode, without gradients, each batch's
// forward in `shards`.
EvalResult evaluate(models::ImageModel& model, data::DataLoader& loader, int64_t num_classes, torch::Device device,
                    bool bf16_autocast, const BatchShards& shards);

// The mean reconstruction loss of a masked-image-modelling model over the loader's batches, in
// eval mode without gradients; every evaluation hides the same patches of an image (its noise
// drawn from (seed, epoch 0, index)), so that the losses of epochs compare. Only samples and loss are set.
EvalResult evaluate_reconstruction(models::ImageModel& model, data::DataLoader& loader, uint64_t seed,
                                   torch::Device device, bool bf16_autocast, const BatchShards& shards);

// The result over every rank's shard of the validation set, from each rank's own result.
EvalResult combine_ranks(const EvalResult& local, DataParallel& parallel);

// A detector's predictions over the loader's images and their objects, with boxes as (x0, y0, x1, y1)
// in [0, 1] of the model's input (IoU does not change with the scale of either axis) and images
// named by dataset index. Every query is a detection (DETR: no NMS): its most likely object class
// and that class's probability as its score.
struct DetectionSet {
  std::vector<ScoredBox> detections;
  std::vector<LabelledBox> objects;
  int64_t images = 0;
};
// Each batch runs in `shards`' slices, as evaluate() runs them.
DetectionSet collect_detections(models::ImageModel& model, data::DataLoader& loader, torch::Device device,
                                bool bf16_autocast, const BatchShards& shards);
// Every rank's detections and objects, on every rank.
DetectionSet combine_ranks(const DetectionSet& local, DataParallel& parallel);

}  // namespace vit::app
