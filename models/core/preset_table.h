#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace vit::models {

// An architecture's presets by name (sorted): their names, and one of them, or an
// std::invalid_argument naming the `family` ("Swin") and listing the known names.
template <typename Options>
std::vector<std::string> preset_names_in(const std::map<std::string, Options>& presets) {
  std::vector<std::string> names;
  for (const auto& entry : presets) names.push_back(entry.first);
  return names;
}

template <typename Options>
const Options& preset_in(const std::map<std::string, Options>& presets, const std::string& name,
                         const std::string& family) {
  const auto found = presets.find(name);
  if (found != presets.end()) return found->second;
  std::string known;
  for (const auto& entry : presets) known += (known.empty() ? "" : ", ") + entry.first;
  throw std::invalid_argument("unknown " + family + " preset '" + name + "' (known: " + known + ")");
}

}  // namespace vit::models
