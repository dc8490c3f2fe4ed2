#include "app/file_util.h"

#include <c10/util/Exception.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace vit::app {
namespace {

void sync_path(const std::filesystem::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) throw std::runtime_error(std::strerror(errno));
  const int status = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  if (status != 0) throw std::runtime_error(std::strerror(saved));
}

}  // namespace

void write_atomically(const std::filesystem::path& file,
                      const std::function<void(const std::filesystem::path& temporary)>& write) {
  const auto temporary = file.parent_path() / ("." + file.filename().string() + ".tmp-" + std::to_string(::getpid()));
  try {
    write(temporary);
    sync_path(temporary, O_RDONLY);
    std::filesystem::rename(temporary, file);
  } catch (const c10::Error& error) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw std::runtime_error(file.string() + ": cannot write (" + error.what_without_backtrace() +
                             "); the previous file is unchanged");
  } catch (const std::exception& error) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw std::runtime_error(file.string() + ": cannot write (" + error.what() + "); the previous file is unchanged");
  }
  try {
    sync_path(file.parent_path().empty() ? "." : file.parent_path(), O_RDONLY | O_DIRECTORY);
  } catch (const std::exception&) {
    // The rename is done; a directory that cannot be synced (some filesystems) only weakens durability.
  }
}

void write_text_atomically(const std::filesystem::path& file, const std::string& text) {
  write_atomically(file, [&](const std::filesystem::path& temporary) {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw std::runtime_error("write failed (disk full?)");
  });
}

TemporaryDirectory::TemporaryDirectory(const std::string& prefix) {
  std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error(pattern + ": cannot create a temporary directory: " + std::strerror(errno));
  }
  path_ = pattern;
}

TemporaryDirectory::~TemporaryDirectory() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace vit::app
