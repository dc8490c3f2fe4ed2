#pragma once

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>

namespace vit::data {

// A JSON number as a whole int64, or nothing when it is not one. nlohmann's get<int64_t>() casts a
// float unchecked, which is undefined behaviour past int64's range (an id of 1e30); whole floats such
// as 640.0, which some exporters write, are taken.
inline std::optional<int64_t> json_integer(const nlohmann::json& value) {
  if (value.is_number_unsigned()) {
    const auto number = value.get<uint64_t>();
    if (number > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(number);
  }
  if (value.is_number_integer()) return value.get<int64_t>();
  if (value.is_number_float()) {
    const auto number = value.get<double>();
    if (std::trunc(number) == number && number >= -0x1p63 && number < 0x1p63) return static_cast<int64_t>(number);
  }
  return std::nullopt;
}

}  // namespace vit::data
