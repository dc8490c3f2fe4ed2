#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace vit::data {

// A file opened for reading only once it is known to be a regular file (symlinks followed): a
// directory, FIFO, socket or device is a DataError naming the file and what it is, and opening a
// FIFO never blocks. Every reader of user-given input files goes through here, so a size read
// from a failed stat can never size a buffer.
class RegularFile {
 public:
  // `what` names the kind of file in messages ("image", "CSV list", ...).
  RegularFile(const std::filesystem::path& file, const std::string& what);
  ~RegularFile();
  RegularFile(const RegularFile&) = delete;
  RegularFile& operator=(const RegularFile&) = delete;

  uint64_t size() const { return size_; }
  int descriptor() const { return fd_; }
  // The whole file; a DataError when it is larger than `max_bytes`.
  std::vector<uint8_t> read_all(uint64_t max_bytes);
  // Its first `max_bytes` bytes (fewer when the file is shorter).
  std::vector<uint8_t> read_prefix(uint64_t max_bytes);
  // Gives up ownership of the descriptor (blocking reads restored), e.g. for gzdopen.
  int release();

 private:
  std::filesystem::path file_;
  std::string what_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// The whole of a regular text or binary file, for readers that parse from memory.
std::string read_regular_text(const std::filesystem::path& file, const std::string& what, uint64_t max_bytes);

// For libraries that open files by name themselves (TorchScript, zlib): the same checks, no read.
void require_regular_file(const std::filesystem::path& file, const std::string& what);

}  // namespace vit::data
