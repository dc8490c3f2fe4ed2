#pragma once

#include "data/dataset.h"

#include <memory>
#include <utility>

namespace vit::data {

// A view of some samples of another dataset.
class SubsetDataset : public Dataset {
 public:
  SubsetDataset(std::shared_ptr<const Dataset> base, std::vector<size_t> indices)
      : base_(std::move(base)), indices_(std::move(indices)) {}

  size_t size() const override { return indices_.size(); }
  int64_t label(size_t index) const override { return base_->label(indices_[index]); }
  cv::Mat load(size_t index, int channels) const override { return base_->load(indices_[index], channels); }
  std::string describe(size_t index) const override { return base_->describe(indices_[index]); }
  const std::vector<std::string>& class_names() const override { return base_->class_names(); }
  const std::vector<int64_t>& category_ids() const override { return base_->category_ids(); }
  std::optional<ImageSize> stored_size(size_t index) const override { return base_->stored_size(indices_[index]); }
  bool has_objects() const override { return base_->has_objects(); }
  ObjectBoxes objects(size_t index) const override { return base_->objects(indices_[index]); }

 private:
  std::shared_ptr<const Dataset> base_;
  std::vector<size_t> indices_;
};

// Another dataset's samples with their labels renumbered (old label -> new label).
class RelabeledDataset : public Dataset {
 public:
  RelabeledDataset(std::shared_ptr<const Dataset> base, std::vector<int64_t> new_label, std::vector<std::string> names)
      : base_(std::move(base)), new_label_(std::move(new_label)), names_(std::move(names)) {}

  size_t size() const override { return base_->size(); }
  int64_t label(size_t index) const override { return new_label_[static_cast<size_t>(base_->label(index))]; }
  cv::Mat load(size_t index, int channels) const override { return base_->load(index, channels); }
  std::string describe(size_t index) const override { return base_->describe(index); }
  const std::vector<std::string>& class_names() const override { return names_; }
  std::optional<ImageSize> stored_size(size_t index) const override { return base_->stored_size(index); }

 private:
  std::shared_ptr<const Dataset> base_;
  std::vector<int64_t> new_label_;
  std::vector<std::string> names_;
};

// `dataset` with its classes numbered by name as `class_names` numbers them (the validation split
// as the training split does, evaluation data as the checkpoint does); `dataset` itself when it
// already is. A DataError naming `what` lists every class that occurs in `dataset` but not in
// `class_names`.
std::shared_ptr<const Dataset> align_classes(std::shared_ptr<const Dataset> dataset,
                                             const std::vector<std::string>& class_names, const std::string& what);

// Splits a dataset into (train, val) with a fixed-seed permutation, val taking round(fraction N).
std::pair<std::shared_ptr<const Dataset>, std::shared_ptr<const Dataset>> split_dataset(
    const std::shared_ptr<const Dataset>& dataset, double val_fraction, uint64_t seed);

}  // namespace vit::data
