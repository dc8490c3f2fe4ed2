// The checkpoint reader: the header and metadata of any file are read or refused with a
// FileError (DataError for a file that cannot be read at all); the embedded config is then held to the config loader's
// contract.
#include "app/config/config.h"
#include "app/errors.h"
#include "app/io/checkpoint.h"
#include "data/errors.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = vit::fuzz::write_input("input.ckpt", data, size);
  try {
    vit::app::CheckpointReader reader(file);
    (void)vit::app::load_config_text(reader.config_yaml(), file.string(), {});
  } catch (const vit::app::FileError&) {
  } catch (const vit::data::DataError&) {
  } catch (const vit::app::ConfigError&) {
  }
  return 0;
}
