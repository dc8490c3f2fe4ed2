// The safetensors reader: any bytes give tensors whose memory lies inside the file (and string
// metadata), or a FileError naming the file; never a read outside the mapping. (torch.save files go to LibTorch's
// own zip reader, which crashes on crafted archives as torch.load does, so they are not fuzzed.)
#include "app/errors.h"
#include "app/io/weight_files.h"
#include "data/errors.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = vit::fuzz::write_input("weights.safetensors", data, size);
  try {
    for (const auto& entry : vit::app::read_safetensors(file)) {
      // Touch every byte: ASan reports any that lies outside the mapped file.
      const auto& tensor = entry.second;
      volatile double sum = tensor.numel() > 0 ? tensor.to(torch::kFloat64).sum().item<double>() : 0.0;
      (void)sum;
    }
  } catch (const vit::app::FileError&) {
  } catch (const vit::data::DataError&) {
  }
  try {
    (void)vit::app::read_safetensors_metadata(file);
  } catch (const vit::app::FileError&) {
  }
  return 0;
}
