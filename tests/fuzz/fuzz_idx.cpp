// The IDX reader (MNIST / Fashion-MNIST files, raw or gzip): any bytes give a tensor of the
// declared shape or a DataError.
#include "data/errors.h"
#include "data/idx_file.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = vit::fuzz::write_input("input-idx3-ubyte", data, size);
  try {
    const auto tensor = vit::data::read_idx_file(file);
    if (tensor.numel() > 0) (void)tensor.sum().item<int64_t>();
  } catch (const vit::data::DataError&) {
  }
  return 0;
}
