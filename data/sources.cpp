#include "data/sources.h"

#include "data/csv_list.h"
#include "data/errors.h"
#include "data/image_folder.h"
#include "data/subset.h"
#include "data/tensor_dataset.h"

namespace vit::data {

std::shared_ptr<const Dataset> open_source(const SourceOptions& source, const DataOptions& options) {
  switch (source.kind) {
    case SourceKind::ImageFolder:
      return std::make_shared<ImageFolderDataset>(source.path, options.max_pixels, options.class_names);
    case SourceKind::Csv:
      return std::make_shared<CsvListDataset>(source.path, options.class_names, options.max_pixels);
    case SourceKind::Idx:
      return std::make_shared<TensorDataset>(load_idx_dataset(source.path, source.split, options.class_names));
    case SourceKind::Cifar:
      return std::make_shared<TensorDataset>(load_cifar_dataset(source.path, source.split, options.class_names));
  }
  throw DataError("unknown data source kind");
}

DataSplits open_datasets(const DataOptions& options) {
  auto train = open_source(options.train, options);
  // The validation split is scored with the training split's class indices, matched by name
  // (when both have labels: pretraining reads none).
  if (options.val) {
    auto val = open_source(*options.val, options);
    if (!train->labelled() || !val->labelled()) return {train, val};
    return {train, align_classes(val, train->class_names(), "data.val")};
  }
  if (options.val_fraction > 0.0) {
    auto [train_part, val_part] = split_dataset(train, options.val_fraction, options.split_seed);
    return {train_part, val_part};
  }
  return {train, nullptr};
}

}  // namespace vit::data
