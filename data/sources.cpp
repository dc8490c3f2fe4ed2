#include "data/sources.h"

#include "data/coco_dataset.h"
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
    case SourceKind::Coco:
      return std::make_shared<CocoDataset>(source.images, source.annotations, options.max_pixels,
                                           options.on_bad_sample == BadSamplePolicy::Skip);
  }
  throw DataError("unknown data source kind");
}

DataSplits open_datasets(const DataOptions& options) {
  auto train = open_source(options.train, options);
  // The validation split is scored with the training split's class indices, matched by name
  // (when both have labels: pretraining reads none).
  if (options.val) {
    auto val = open_source(*options.val, options);
    if (train->has_objects() || val->has_objects()) {
      // Detection: both splits COCO files with the same categories, in the same order.
      if (train->has_objects() != val->has_objects() || train->class_names() != val->class_names()) {
        throw DataError(
            "data.val: a detection dataset's validation split must be COCO data with the training "
            "split's categories (same ids and names)");
      }
      return {train, val};
    }
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
