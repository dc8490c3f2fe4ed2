// The COCO annotation reader: any bytes give a dataset whose boxes lie inside their images with
// classes in range, or a DataError naming the file.
#include "data/coco_dataset.h"
#include "data/errors.h"
#include "fuzz/fuzz_support.h"

#include <fstream>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fs = std::filesystem;
  const auto& folder = vit::fuzz::scratch_folder();
  // Images the annotations may name (their contents are never read here).
  for (const char* name : {"1.png", "2.png"}) {
    if (!fs::exists(folder / name)) std::ofstream(folder / name) << "png";
  }
  const auto file = vit::fuzz::write_input("annotations.json", data, size);
  for (const bool skip : {false, true}) {
    try {
      const vit::data::CocoDataset dataset(folder, file, 1 << 20, skip);
      const auto classes = static_cast<int64_t>(dataset.class_names().size());
      for (size_t i = 0; i < dataset.size(); ++i) {
        const auto size_of = dataset.stored_size(i);
        for (const auto& box : dataset.objects(i)) {
          if (box.category < 0 || box.category >= classes || !(box.x0 < box.x1) || !(box.y0 < box.y1) || box.x0 < 0 ||
              box.y0 < 0 || box.x1 > static_cast<double>(size_of->width) ||
              box.y1 > static_cast<double>(size_of->height)) {
            __builtin_trap();
          }
        }
      }
    } catch (const vit::data::DataError&) {
    }
  }
  return 0;
}
