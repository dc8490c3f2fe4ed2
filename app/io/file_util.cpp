#include "app/io/file_util.h"

#include "app/errors.h"

#include <c10/util/Exception.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace vit::app {
namespace {

const std::string kTemporaryInfix = ".tmp-";

// The temporary being written, for remove_active_temporary() in a signal handler: a fixed buffer
// and an atomic flag, since a handler may neither allocate nor take locks.
char g_active_temporary[4096];
std::atomic<bool> g_temporary_active{false};

class ActiveTemporary {
 public:
  explicit ActiveTemporary(const std::filesystem::path& path) {
    const auto& text = path.native();
    if (text.size() >= sizeof(g_active_temporary)) return;
    std::memcpy(g_active_temporary, text.c_str(), text.size() + 1);
    g_temporary_active.store(true);
  }
  ~ActiveTemporary() { g_temporary_active.store(false); }
  ActiveTemporary(const ActiveTemporary&) = delete;
  ActiveTemporary& operator=(const ActiveTemporary&) = delete;
};

// ".<name>.tmp-<pid>": hidden, and owned by the process that writes it.
std::string temporary_suffix() { return kTemporaryInfix + std::to_string(::getpid()); }

void sync_path(const std::filesystem::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) throw std::runtime_error(std::strerror(errno));
  const int status = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  if (status != 0) throw std::runtime_error(std::strerror(saved));
}

// Calls write(temporary), flushes the temporary to disk and renames it over `file`.
void write_atomically(const std::filesystem::path& file,
                      const std::function<void(const std::filesystem::path& temporary)>& write) {
  const auto temporary = file.parent_path() / ("." + file.filename().string() + temporary_suffix());
  const ActiveTemporary active(temporary);
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

}  // namespace

void remove_active_temporary() {
  if (g_temporary_active.load()) ::unlink(g_active_temporary);
}

void remove_stale_temporaries(const std::filesystem::path& folder) {
  const auto own_suffix = temporary_suffix();
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(folder, error)) {
    const auto name = entry.path().filename().string();
    const auto infix = name.rfind(kTemporaryInfix);
    if (name.front() != '.' || infix == std::string::npos || name.substr(infix) == own_suffix) continue;
    std::error_code ignored;
    std::filesystem::remove(entry.path(), ignored);
  }
}

void write_stream_atomically(const std::filesystem::path& file, const std::function<void(const ByteSink&)>& produce) {
  write_atomically(file, [&](const std::filesystem::path& temporary) {
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error(std::strerror(errno));
    int error = 0;
    const ByteSink sink = [&](const void* data, size_t size) {
      const auto* bytes = static_cast<const char*>(data);
      while (error == 0 && size > 0) {
        const ssize_t written = ::write(fd, bytes, size);
        if (written < 0 && errno != EINTR) error = errno;
        if (written > 0) {
          bytes += written;
          size -= static_cast<size_t>(written);
        }
      }
    };
    try {
      produce(sink);
    } catch (...) {
      ::close(fd);
      throw;
    }
    if (::close(fd) != 0 && error == 0) error = errno;
    if (error != 0) throw std::runtime_error(std::strerror(error));
  });
}

void write_text_atomically(const std::filesystem::path& file, const std::string& text) {
  write_stream_atomically(file, [&](const ByteSink& sink) { sink(text.data(), text.size()); });
}

void refuse_overwriting_input(const std::filesystem::path& output, const std::filesystem::path& input,
                              const std::string& option) {
  std::error_code error;
  if (std::filesystem::equivalent(output, input, error)) {
    throw ConfigError(option + " " + output.string() + ": is the input " + input.string() +
                      ", which writing there would destroy; choose another file");
  }
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
