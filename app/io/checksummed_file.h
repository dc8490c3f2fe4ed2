#pragma once

#include "app/io/file_util.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace vit::app {

// A payload followed by a 24-byte trailer: an 8-byte magic, the format version, the payload's
// CRC-32 and its size. Readers check all of it before a parser sees a byte, so a truncated or
// damaged file is refused with a clear message instead of reaching LibTorch's archive reader,
// which crashes on some damaged archives.
constexpr size_t kTrailerBytes = 24;

// Streams the payload that `write_payload` produces into `sink`, then the trailer.
void write_checksummed(const ByteSink& sink, const std::string& magic, uint32_t version,
                       const std::function<void(const ByteSink&)>& write_payload);

// The verified payload of a checksummed file. Throws data::DataError naming the file when it is
// missing, too short, has another magic, is truncated or damaged, or has a newer version.
class ChecksummedFile {
 public:
  ChecksummedFile(const std::filesystem::path& file, const std::string& magic, uint32_t newest_version,
                  const std::string& what);
  ~ChecksummedFile();
  ChecksummedFile(const ChecksummedFile&) = delete;
  ChecksummedFile& operator=(const ChecksummedFile&) = delete;

  uint32_t version() const { return version_; }
  uint64_t payload_size() const { return payload_size_; }
  // Copies up to `size` payload bytes from `position`; the count copied.
  size_t read(uint64_t position, void* into, size_t size) const;

 private:
  int fd_ = -1;
  uint32_t version_ = 0;
  uint64_t payload_size_ = 0;
};

// "crc32 1a2b3c4d, 12345 bytes" of any file, to recognise it again later. Throws
// std::runtime_error naming the file when it cannot be read.
std::string file_fingerprint(const std::filesystem::path& file);

}  // namespace vit::app
