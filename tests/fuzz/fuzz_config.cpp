// The YAML config loader: any text gives a validated Config or a ConfigError naming the key or
// line; an emitted config loads back.
#include "app/config/config.h"
#include "app/errors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto config =
        vit::app::load_config_text(std::string(reinterpret_cast<const char*>(data), size), "fuzz.yaml", {});
    (void)vit::app::load_config_text(vit::app::emit_config(config), "emitted.yaml", {});
  } catch (const vit::app::ConfigError&) {
  }
  return 0;
}
