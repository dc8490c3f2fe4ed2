#pragma once

#include "data/data_options.h"
#include "data/dataset.h"

#include <memory>

namespace vit::data {

struct DataSplits {
  std::shared_ptr<const Dataset> train;
  std::shared_ptr<const Dataset> val;  // null when the config has no validation data
};

// Opens one source; throws DataError naming the file for anything missing or malformed.
std::shared_ptr<const Dataset> open_source(const SourceOptions& source, const DataOptions& options);
// The train and validation datasets the options describe (separate sources or a split).
DataSplits open_datasets(const DataOptions& options);

}  // namespace vit::data
