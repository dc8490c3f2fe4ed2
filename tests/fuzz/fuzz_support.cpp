#include "fuzz/fuzz_support.h"

#include <unistd.h>

#include <fstream>

namespace vit::fuzz {

const std::filesystem::path& scratch_folder() {
  static const auto folder = [] {
    const auto path = std::filesystem::temp_directory_path() / ("vit-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
    return path;
  }();
  return folder;
}

std::filesystem::path write_input(const std::string& name, const uint8_t* data, size_t size) {
  const auto file = scratch_folder() / name;
  std::ofstream(file, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return file;
}

}  // namespace vit::fuzz
