#pragma once

#include <stdexcept>

namespace vit::data {

// Unreadable, malformed or inconsistent input data; the message names the file (and line).
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace vit::data
