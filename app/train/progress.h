#pragma once

#include <chrono>
#include <string>

namespace vit::app {

// Training progress on stderr: a live bar redrawn in place on a terminal, or a plain line every
// `log_every` batches when stderr is a file or pipe; nothing with log_every 0.
class Progress {
 public:
  Progress(std::string label, int64_t total, int64_t first, int64_t log_every);
  void update(int64_t done, double loss, double lr, double images_per_s);
  void finish();

 private:
  std::string label_;
  int64_t total_;
  int64_t first_;
  int64_t log_every_;
  bool silent_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace vit::app
