#include "data/regular_file.h"

#include "data/errors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vit::data {
namespace {

std::string kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  return "a special file";
}

std::string mebibytes(uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

}  // namespace

RegularFile::RegularFile(const std::filesystem::path& file, const std::string& what) : file_(file), what_(what) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
  fd_ = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd_ < 0) {
    const int error = errno;
    throw DataError(file.string() + ": cannot open " + what + ": " +
                    (error == ENOENT ? std::string("no such file") : std::strerror(error)));
  }
  struct stat status {};
  const bool examined = ::fstat(fd_, &status) == 0;
  if (!examined || !S_ISREG(status.st_mode)) {
    const std::string why = examined ? "is " + kind_of(status.st_mode) + ", not a " + what + " file"
                                     : std::string("cannot read its status: ") + std::strerror(errno);
    ::close(fd_);
    fd_ = -1;
    throw DataError(file.string() + ": " + why);
  }
  size_ = static_cast<uint64_t>(status.st_size);
}

RegularFile::~RegularFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::vector<uint8_t> RegularFile::read_prefix(uint64_t max_bytes) {
  std::vector<uint8_t> bytes(static_cast<size_t>(std::min(size_, max_bytes)));
  size_t filled = 0;
  while (filled < bytes.size()) {
    const ssize_t got = ::pread(fd_, bytes.data() + filled, bytes.size() - filled, static_cast<off_t>(filled));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw DataError(file_.string() + ": read error: " + std::strerror(errno));
    if (got == 0) break;  // shrank while being read
    filled += static_cast<size_t>(got);
  }
  bytes.resize(filled);
  return bytes;
}

std::vector<uint8_t> RegularFile::read_all(uint64_t max_bytes) {
  if (size_ > max_bytes) {
    throw DataError(file_.string() + ": " + mebibytes(size_) + ", larger than any " + what_ + " file read here (" +
                    mebibytes(max_bytes) + ")");
  }
  return read_prefix(max_bytes);
}

int RegularFile::release() {
  const int fd = fd_;
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  fd_ = -1;
  return fd;
}

std::string read_regular_text(const std::filesystem::path& file, const std::string& what, uint64_t max_bytes) {
  const auto bytes = RegularFile(file, what).read_all(max_bytes);
  return {bytes.begin(), bytes.end()};
}

void require_regular_file(const std::filesystem::path& file, const std::string& what) { RegularFile(file, what); }

}  // namespace vit::data
