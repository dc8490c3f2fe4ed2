// The pickle reader behind `vit import` of torch.save files: any bytes give a value or an
// std::invalid_argument, never a crash, a read outside the input or a tensor outside its storage.
// Storages come back as zeros of the size the pickle declares (bounded, as the real loader is
// bounded by the archive's record); the zip container is LibTorch's reader, not fuzzed here.
#include "app/io/torch_pickle.h"

#include <stdexcept>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto storage = [](const std::string&, torch::ScalarType dtype, int64_t numel) {
    if (numel > (int64_t{1} << 16)) throw std::invalid_argument("storage larger than the fuzzer hands out");
    return torch::zeros({numel}, torch::TensorOptions().dtype(dtype));
  };
  try {
    const auto pickle = vit::app::unpickle(data, size, storage);
    volatile auto kind = pickle.root().kind;
    (void)kind;
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
