// TensorBoard event files as a resumed run reads them back: any bytes give the records whose
// lengths and CRCs check, and event headers parsed from them; never a read outside the input. CRCs
// rarely pass for mutated bytes, so the input is also parsed as one event directly.
#include "app/io/event_file.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = vit::fuzz::write_input("events.out.tfevents.fuzz", data, size);
  for (const auto& record : vit::app::read_event_records(file)) (void)vit::app::parse_event_header(record);
  (void)vit::app::parse_event_header(std::string(reinterpret_cast<const char*>(data), size));
  return 0;
}
