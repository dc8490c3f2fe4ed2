// The CIFAR binary reader: the first input byte picks CIFAR-10 (even) or CIFAR-100 (odd), the
// rest is the batch file.
#include "data/errors.h"
#include "data/tensor_dataset.h"
#include "fuzz/fuzz_support.h"

#include <filesystem>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool cifar100 = data[0] % 2 == 1;
  const auto folder = vit::fuzz::scratch_folder() / "cifar";
  std::filesystem::remove_all(folder);
  std::filesystem::create_directories(folder);
  const auto name = std::string("cifar/") + (cifar100 ? "test.bin" : "test_batch.bin");
  vit::fuzz::write_input(name, data + 1, size - 1);
  try {
    const auto dataset = vit::data::load_cifar_dataset(folder, "test", {});
    for (size_t i = 0; i < dataset.size(); ++i) (void)dataset.load(i, 3);
  } catch (const vit::data::DataError&) {
  }
  return 0;
}
