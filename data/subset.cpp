#include "data/subset.h"

#include "data/errors.h"
#include "data/random.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace vit::data {

std::shared_ptr<const Dataset> align_classes(std::shared_ptr<const Dataset> dataset,
                                             const std::vector<std::string>& class_names, const std::string& what) {
  const auto& own = dataset->class_names();
  if (own == class_names) return dataset;
  std::map<std::string, int64_t> index_of;
  for (size_t i = 0; i < class_names.size(); ++i) index_of.emplace(class_names[i], static_cast<int64_t>(i));
  std::vector<bool> occurs(own.size(), false);
  for (size_t i = 0; i < dataset->size(); ++i) occurs[static_cast<size_t>(dataset->label(i))] = true;
  std::vector<int64_t> new_label(own.size(), -1);
  std::vector<std::string> unknown;
  for (size_t c = 0; c < own.size(); ++c) {
    if (const auto found = index_of.find(own[c]); found != index_of.end()) {
      new_label[c] = found->second;
    } else if (occurs[c]) {
      unknown.push_back(own[c]);
    }
  }
  if (!unknown.empty()) {
    const auto listed = [](const std::vector<std::string>& names) {
      std::string text;
      for (const auto& name : names) text += (text.empty() ? "" : ", ") + name;
      return text;
    };
    throw DataError(what + ": classes the model was not trained on: " + listed(unknown) +
                    " (its classes: " + listed(class_names) + ")");
  }
  return std::make_shared<RelabeledDataset>(std::move(dataset), std::move(new_label), class_names);
}

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
