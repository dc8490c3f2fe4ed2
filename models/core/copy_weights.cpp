#include "models/core/architecture.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace vit::models {
namespace {

std::string listed(const std::vector<std::string>& names) {
  std::string text;
  for (size_t i = 0; i < names.size() && i < 12; ++i) text += (i > 0 ? ", " : "") + names[i];
  if (names.size() > 12) text += fmt::format(" and {} more", names.size() - 12);
  return text;
}

}  // namespace

const torch::Tensor& tensor_named(const NamedTensors& weights, const std::string& name) {
  const auto found = weights.find(name);
  if (found == weights.end()) throw WeightsError("the weights have no '" + name + "' tensor");
  return found->second;
}

void copy_weights(ImageModelImpl& model, const NamedTensors& weights, const std::set<std::string>& fresh) {
  std::vector<std::string> missing;
  std::vector<std::string> mismatched;
  std::set<std::string> used;
  torch::NoGradGuard no_grad;
  const auto parameters = model.named_parameters();
  for (const auto& item : parameters) {
    const auto& name = item.key();
    if (fresh.count(name) > 0) continue;
    const auto found = weights.find(name);
    if (found == weights.end()) {
      missing.push_back(name);
    } else if (found->second.sizes() != item.value().sizes()) {
      mismatched.push_back(fmt::format("{} ({} in the file, {} in the model)", name,
                                       fmt::join(found->second.sizes(), "x"), fmt::join(item.value().sizes(), "x")));
    } else {
      item.value().copy_(found->second);
      used.insert(name);
    }
  }
  const auto buffers = model.named_buffers();
  std::vector<std::string> unexpected;
  for (const auto& [name, tensor] : weights) {
    // Buffers (fixed position tables, relative position indices, window masks) are rebuilt by the
    // model; state dicts carry them.
    if (used.count(name) == 0 && buffers.find(name) == nullptr && parameters.find(name) == nullptr) {
      unexpected.push_back(name);
    }
  }
  if (!missing.empty() || !mismatched.empty() || !unexpected.empty()) {
    std::string message = "the weights do not fit the model";
    if (!missing.empty()) message += "; missing: " + listed(missing);
    if (!mismatched.empty()) message += "; wrong shape: " + listed(mismatched);
    if (!unexpected.empty()) message += "; unexpected: " + listed(unexpected);
    throw WeightsError(message);
  }
}

}  // namespace vit::models
