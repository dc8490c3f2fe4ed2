// Image header sniffing (JPEG, PNG, BMP, WebP, TIFF), which runs before any decoder to refuse
// oversized images: any bytes give a size or nothing.
#include "data/image_file.h"

#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto size_found = vit::data::read_image_size(std::vector<uint8_t>(data, data + size));
  if (size_found && (size_found->width < 0 || size_found->height < 0)) __builtin_trap();
  return 0;
}
