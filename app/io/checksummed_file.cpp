#include "app/io/checksummed_file.h"

#include "app/errors.h"
#include "app/io/byte_order.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <array>
#include <cstring>
#include <fstream>
#include <vector>

namespace vit::app {
namespace {

constexpr size_t kMagicBytes = 8;

std::array<char, kMagicBytes> padded(const std::string& magic) {
  std::array<char, kMagicBytes> bytes{};
  std::memcpy(bytes.data(), magic.data(), std::min(magic.size(), kMagicBytes));
  return bytes;
}

}  // namespace

void write_checksummed(const ByteSink& sink, const std::string& magic, uint32_t version,
                       const std::function<void(const ByteSink&)>& write_payload) {
  uLong crc = crc32(0L, Z_NULL, 0);
  uint64_t size = 0;
  write_payload([&](const void* data, size_t bytes) {
    for (size_t done = 0; done < bytes;) {  // crc32 takes 32-bit lengths
      const auto chunk = static_cast<uInt>(std::min<size_t>(bytes - done, 1u << 30));
      crc = crc32(crc, static_cast<const Bytef*>(data) + done, chunk);
      done += chunk;
    }
    size += bytes;
    sink(data, bytes);
  });
  std::array<uint8_t, kTrailerBytes> trailer{};
  const auto magic_bytes = padded(magic);
  std::memcpy(trailer.data(), magic_bytes.data(), kMagicBytes);
  put_le(trailer.data() + 8, version, 4);
  put_le(trailer.data() + 12, crc, 4);
  put_le(trailer.data() + 16, size, 8);
  sink(trailer.data(), trailer.size());
}

ChecksummedFile::ChecksummedFile(const std::filesystem::path& file, const std::string& magic, uint32_t newest_version,
                                 const std::string& what) {
  const auto fail = [&](const std::string& why) { throw FileError(file.string() + ": " + why); };
  const auto unreadable = "not a readable " + what + " (truncated, damaged, or another kind of file)";
  std::error_code error;
  if (!std::filesystem::is_regular_file(file, error)) fail("no such " + what + " file");
  fd_ = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) fail(std::string("cannot open: ") + std::strerror(errno));
  // A constructor that throws runs no destructor: close the file before every refusal.
  const auto refuse = [&](const std::string& why) {
    ::close(fd_);
    fd_ = -1;
    fail(why);
  };
  struct stat status {};
  if (::fstat(fd_, &status) != 0 || status.st_size < static_cast<off_t>(kTrailerBytes)) refuse(unreadable);
  const auto file_size = static_cast<uint64_t>(status.st_size);
  std::array<uint8_t, kTrailerBytes> trailer{};
  const auto magic_bytes = padded(magic);
  if (::pread(fd_, trailer.data(), kTrailerBytes, static_cast<off_t>(file_size - kTrailerBytes)) !=
          static_cast<ssize_t>(kTrailerBytes) ||
      std::memcmp(trailer.data(), magic_bytes.data(), kMagicBytes) != 0) {
    refuse(unreadable);
  }
  version_ = static_cast<uint32_t>(get_le(trailer.data() + 8, 4));
  const auto expected_crc = get_le(trailer.data() + 12, 4);
  payload_size_ = get_le(trailer.data() + 16, 8);
  if (version_ > newest_version) {
    refuse(what + " format version " + std::to_string(version_) + " is newer than this vit supports (" +
           std::to_string(newest_version) + "); upgrade vitcpp");
  }
  if (payload_size_ != file_size - kTrailerBytes) refuse(unreadable);
  uLong crc = crc32(0L, Z_NULL, 0);
  std::vector<uint8_t> chunk(size_t{1} << 20);
  for (uint64_t position = 0; position < payload_size_;) {
    const size_t got = read(position, chunk.data(), chunk.size());
    if (got == 0) refuse(unreadable);
    crc = crc32(crc, chunk.data(), static_cast<uInt>(got));
    position += got;
  }
  if (crc != expected_crc) refuse("not a readable " + what + " (checksum mismatch: the file is damaged)");
}

std::string file_fingerprint(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error(file.string() + ": cannot be read");
  uLong crc = crc32(0L, Z_NULL, 0);
  uint64_t size = 0;
  std::vector<char> chunk(size_t{1} << 20);
  while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) || in.gcount() > 0) {
    crc = crc32(crc, reinterpret_cast<const Bytef*>(chunk.data()), static_cast<uInt>(in.gcount()));
    size += static_cast<uint64_t>(in.gcount());
  }
  if (in.bad()) throw std::runtime_error(file.string() + ": read failed");
  return fmt::format("crc32 {:08x}, {} bytes", crc, size);
}

ChecksummedFile::~ChecksummedFile() {
  if (fd_ >= 0) ::close(fd_);
}

size_t ChecksummedFile::read(uint64_t position, void* into, size_t size) const {
  if (position >= payload_size_) return 0;
  size = static_cast<size_t>(std::min<uint64_t>(size, payload_size_ - position));
  size_t done = 0;
  while (done < size) {
    const ssize_t got =
        ::pread(fd_, static_cast<uint8_t*>(into) + done, size - done, static_cast<off_t>(position + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    done += static_cast<size_t>(got);
  }
  return done;
}

}  // namespace vit::app
