// The CSV list parser: any text gives entries with valid labels or a DataError naming a line.
#include "data/csv_list.h"
#include "data/errors.h"

#include <sstream>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream lines(std::string(reinterpret_cast<const char*>(data), size));
  try {
    const auto list = vit::data::parse_csv_list(
        lines, "fuzz.csv", "/fuzz", size % 2 ? std::vector<std::string>{} : std::vector<std::string>{"a", "b"});
    for (const auto& entry : list.entries) {
      if (entry.label < 0 || entry.label >= static_cast<int64_t>(list.class_names.size())) __builtin_trap();
    }
  } catch (const vit::data::DataError&) {
  }
  return 0;
}
