#include "app/train/progress.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>

namespace vit::app {
namespace {

std::string clock_time(double seconds) {
  const auto s = static_cast<int64_t>(seconds);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
                   : fmt::format("{}:{:02}", s / 60, s % 60);
}

}  // namespace

Progress::Progress(std::string label, int64_t total, int64_t first, int64_t log_every)
    : label_(std::move(label)),
      total_(total),
      first_(first),
      log_every_(log_every),
      silent_(log_every <= 0),
      terminal_(!silent_ && ::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

void Progress::update(int64_t done, double loss, double lr, double images_per_s) {
  if (silent_) return;
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double eta =
      done > first_ ? elapsed / static_cast<double>(done - first_) * static_cast<double>(total_ - done) : 0.0;
  if (terminal_) {
    if (now - last_draw_ < std::chrono::milliseconds(100) && done < total_) return;
    last_draw_ = now;
    constexpr int kWidth = 28;
    const int filled = total_ > 0 ? static_cast<int>(kWidth * done / total_) : kWidth;
    std::string bar;
    for (int i = 0; i < kWidth; ++i) bar += i < filled ? "█" : "░";
    std::fprintf(stderr, "\r%s %s %ld/%ld  loss %.4f  lr %.2e  %.0f img/s  ETA %s \x1b[K", label_.c_str(), bar.c_str(),
                 static_cast<long>(done), static_cast<long>(total_), loss, lr, images_per_s, clock_time(eta).c_str());
    std::fflush(stderr);
  } else if (done % log_every_ == 0 || done == total_) {
    spdlog::info("{} {}/{} loss {:.4f} lr {:.2e} {:.0f} img/s ETA {}", label_, done, total_, loss, lr, images_per_s,
                 clock_time(eta));
  }
}

void Progress::finish() {
  if (terminal_) std::fprintf(stderr, "\n");
}

}  // namespace vit::app
