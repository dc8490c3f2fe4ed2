#pragma once

#include <cstdint>
#include <string>

namespace vit::app {

// Little-endian integers of `bytes` bytes, as the formats vitcpp reads and writes store them
// (checkpoint trailers, safetensors' header length, TFRecord framing), whatever the host's order.
inline void put_le(uint8_t* at, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) at[i] = static_cast<uint8_t>(value >> (8 * i));
}

inline uint64_t get_le(const uint8_t* at, int bytes) {
  uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) value = (value << 8) | at[i];
  return value;
}

inline void append_le(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>(value >> (8 * i)));
}

}  // namespace vit::app
