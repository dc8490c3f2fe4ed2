#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace vit::fuzz {

// A private folder for this fuzzing process, created on first use and reused by every input.
const std::filesystem::path& scratch_folder();
// Writes the input to `name` in the scratch folder; returns its path.
std::filesystem::path write_input(const std::string& name, const uint8_t* data, size_t size);

}  // namespace vit::fuzz
