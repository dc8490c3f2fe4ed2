#include "app/io/run_directory.h"

#include "app/errors.h"
#include "app/io/event_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <regex>
#include <stdexcept>

namespace vit::app {
namespace {

bool written_by_training(const std::string& name) {
  static const std::array<const char*, 9> kFixed = {"config.yaml",  "last.ckpt", "best.ckpt",
                                                    "metrics.csv",  "steps.csv", "loss.png",
                                                    "accuracy.png", "lr.png",    "reconstruction.png"};
  static const std::regex kEpochCheckpoint(R"(epoch_\d{4,}\.ckpt)");
  return std::find(kFixed.begin(), kFixed.end(), name) != kFixed.end() || std::regex_match(name, kEpochCheckpoint) ||
         is_event_file(name);
}

}  // namespace

std::vector<std::filesystem::path> run_files(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    if (written_by_training(entry.path().filename().string())) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

void remove_run_files(const std::filesystem::path& dir) {
  for (const auto& file : run_files(dir)) std::filesystem::remove(file);
}

RunLock::RunLock(const std::filesystem::path& dir) {
  const auto file = dir / ".vit.lock";
  fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::runtime_error(file.string() + ": cannot create the run's lock file: " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    char owner[32] = {};
    const ssize_t got = ::pread(fd_, owner, sizeof(owner) - 1, 0);
    ::close(fd_);
    fd_ = -1;
    const std::string pid = got > 0 ? std::string(owner, static_cast<size_t>(got)) : std::string("unknown");
    throw ConfigError(dir.string() + ": another vit train (pid " + pid.substr(0, pid.find('\n')) +
                      ") is writing this run directory; wait for it to end, or use another --output");
  }
  const auto pid = std::to_string(::getpid()) + "\n";
  const bool recorded = ::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, pid.data(), pid.size(), 0) > 0;
  (void)recorded;  // without the pid the lock still holds; only a second run's message is poorer
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace vit::app
