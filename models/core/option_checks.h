#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace vit::models {

// How the architectures' options report a value out of range from validate(): std::invalid_argument,
// which the config layer turns into an error naming the key.
inline void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

// A dropout-like rate: [0, 1).
inline void require_probability(double value, const char* name) {
  require(value >= 0.0 && value < 1.0, fmt::format("{} must be in [0, 1), got {}", name, value));
}

}  // namespace vit::models
