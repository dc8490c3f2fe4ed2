#include "data/subset.h"

#include "data/random.h"

#include <algorithm>
#include <cmath>

namespace vit::data {

std::pair<std::shared_ptr<const Dataset>, std::shared_ptr<const Dataset>> split_dataset(
    const std::shared_ptr<const Dataset>& dataset, double val_fraction, uint64_t seed) {
  Random random(seed, kSplitStream, 0, 0);
  const auto order = random_permutation(dataset->size(), random);
  const auto val_count = static_cast<size_t>(std::lround(val_fraction * static_cast<double>(order.size())));
  std::vector<size_t> val(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(val_count));
  std::vector<size_t> train(order.begin() + static_cast<std::ptrdiff_t>(val_count), order.end());
  std::sort(val.begin(), val.end());
  std::sort(train.begin(), train.end());
  return {std::make_shared<SubsetDataset>(dataset, std::move(train)),
          std::make_shared<SubsetDataset>(dataset, std::move(val))};
}

}  // namespace vit::data
