// The CSV list parser: any text gives entries with valid labels, or (a list of paths alone) entries
// all without labels and no class names, or a DataError naming a line.
#include "data/csv_list.h"
#include "data/errors.h"

#include <sstream>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream lines(std::string(reinterpret_cast<const char*>(data), size));
  try {
    const auto list = vit::data::parse_csv_list(
        lines, "fuzz.csv", "/fuzz", size % 2 ? std::vector<std::string>{} : std::vector<std::string>{"a", "b"});
    const bool unlabeled = list.class_names.empty();
    for (const auto& entry : list.entries) {
      if (unlabeled ? entry.label != vit::data::kNoLabel
                    : entry.label < 0 || entry.label >= static_cast<int64_t>(list.class_names.size())) {
        __builtin_trap();
      }
    }
  } catch (const vit::data::DataError&) {
  }
  return 0;
}
