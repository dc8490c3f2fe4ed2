#pragma once

#include <string>
#include <utility>
#include <vector>

namespace vit::models {

// The spelling of every value of an enumeration, in one table per enumeration: readers, emitters
// and help texts all use it, so a name is written once.
template <typename Enum>
using NameTable = std::vector<std::pair<std::string, Enum>>;

template <typename Enum>
const std::string& name_of(const NameTable<Enum>& table, Enum value) {
  for (const auto& [name, entry] : table) {
    if (entry == value) return name;
  }
  return table.front().first;  // unreachable while every enumerator has a name
}

template <typename Enum>
std::vector<std::string> names_in(const NameTable<Enum>& table) {
  std::vector<std::string> names;
  for (const auto& entry : table) names.push_back(entry.first);
  return names;
}

}  // namespace vit::models
