#include "app/runtime/thread_governor.h"

#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <thread>

namespace vit::app {
namespace {

constexpr double kSampleSeconds = 1.0;

double seconds_of(const timeval& time) { return static_cast<double>(time.tv_sec) + 1e-6 * time.tv_usec; }

}  // namespace

int threads_beside(double others_busy, int cores, int max_threads) {
  const double free_cores = static_cast<double>(cores) - std::max(0.0, others_busy);
  return std::clamp(static_cast<int>(std::floor(free_cores + 0.4)), 1, std::max(1, max_threads));
}

ThreadGovernor::Sample ThreadGovernor::sample() {
  Sample result;
  result.wall = std::chrono::steady_clock::now();
  // The first line of /proc/stat: the machine's time in clock ticks per state since boot.
  std::ifstream stat("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  stat >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  result.machine_busy_s = (user + nice + system + irq + softirq + steal) / static_cast<double>(sysconf(_SC_CLK_TCK));
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  result.own_s = seconds_of(usage.ru_utime) + seconds_of(usage.ru_stime);
  return result;
}

ThreadGovernor::ThreadGovernor(int threads, bool adaptive)
    : max_threads_(threads),
      threads_(threads),
      cores_(static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))),
      active_(adaptive && threads > 1 && std::ifstream("/proc/stat").good()),
      last_(sample()) {}

void ThreadGovernor::after_step() {
  if (!active_) return;
  const auto now = sample();
  const double wall = std::chrono::duration<double>(now.wall - last_.wall).count();
  if (wall < kSampleSeconds) return;
  const double others = ((now.machine_busy_s - last_.machine_busy_s) - (now.own_s - last_.own_s)) / wall;
  last_ = now;
  const int wanted = threads_beside(others, cores_, max_threads_);
  if (wanted == threads_) return;
  spdlog::info("threads: {} -> {} (other processes keep {:.1f} of {} cores busy)", threads_, wanted, others, cores_);
  threads_ = wanted;
  at::set_num_threads(wanted);
}

}  // namespace vit::app
