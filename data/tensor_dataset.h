#pragma once

#include "data/dataset.h"

#include <torch/types.h>

#include <filesystem>

namespace vit::data {

// Images already decoded in memory: uint8 [N, H, W] (grey) or [N, H, W, 3] (RGB) with int64
// labels [N]. Backs the IDX (MNIST / Fashion-MNIST) and CIFAR binary formats.
class TensorDataset : public Dataset {
 public:
  TensorDataset(torch::Tensor images, torch::Tensor labels, std::vector<std::string> class_names, std::string name);

  size_t size() const override { return static_cast<size_t>(labels_.size(0)); }
  int64_t label(size_t index) const override { return labels_ptr_[index]; }
  cv::Mat load(size_t index, int channels) const override;
  std::string describe(size_t index) const override { return name_ + "[" + std::to_string(index) + "]"; }
  const std::vector<std::string>& class_names() const override { return class_names_; }
  std::optional<ImageSize> stored_size(size_t) const override { return ImageSize{images_.size(2), images_.size(1)}; }

 private:
  torch::Tensor images_;
  torch::Tensor labels_;
  const int64_t* labels_ptr_;
  std::vector<std::string> class_names_;
  std::string name_;
};

// MNIST / Fashion-MNIST: `split` "train" reads train-images-idx3-ubyte[.gz] and
// train-labels-idx1-ubyte[.gz] from `dir`, "test" the t10k-* pair.
TensorDataset load_idx_dataset(const std::filesystem::path& dir, const std::string& split,
                               std::vector<std::string> class_names);

// CIFAR-10 (data_batch_{1..5}.bin / test_batch.bin, one label byte per record) or CIFAR-100
// (train.bin / test.bin, coarse and fine label bytes; the fine label is used) binary batches.
TensorDataset load_cifar_dataset(const std::filesystem::path& dir, const std::string& split,
                                 std::vector<std::string> class_names);

}  // namespace vit::data
