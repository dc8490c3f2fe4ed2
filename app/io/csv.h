#pragma once

#include <string>
#include <vector>

namespace vit::app {

// One row of RFC 4180 CSV, ending in "\n": a field holding a comma, a double quote, CR or LF is
// enclosed in double quotes, its quotes doubled, so a class name such as `"coat", long` keeps
// its row intact. Every CSV file vitcpp writes goes through here.
std::string csv_row(const std::vector<std::string>& fields);

}  // namespace vit::app
