#pragma once

#include <filesystem>
#include <vector>

namespace vit::app {

// The files `vit train` writes into a run directory (checkpoints, config, metrics, plots) that
// `dir` already holds; empty for a new or unrelated folder.
std::vector<std::filesystem::path> run_files(const std::filesystem::path& dir);
// Removes run_files(dir), leaving anything else in the folder alone (--overwrite).
void remove_run_files(const std::filesystem::path& dir);

// An advisory lock (flock) on DIR/.vit.lock, which holds the owner's pid, for the lifetime of the
// object: a second `vit train` writing the same run directory is refused with a ConfigError
// naming the first one's pid, instead of the two deleting each other's files. The kernel releases
// the lock when its process ends, however it ends.
class RunLock {
 public:
  explicit RunLock(const std::filesystem::path& dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace vit::app
