#pragma once

#include <chrono>
#include <cstdint>

namespace vit::app {

// The intra-op threads to run with `cores` cores when other processes keep `others_busy` cores
// busy on average: the free cores, rounded up from 0.6 (a busy core shared is worse than none:
// OpenMP's barriers wait for the thread the other process holds off its core), at least 1 and at
// most `max_threads`.
int threads_beside(double others_busy, int cores, int max_threads);

// Intra-op threads that give way to other processes. OpenMP's barriers spin for a thread that
// another process keeps off its core, so beside one busy process a 2-thread training step keeps a
// quarter of its speed and a 1-thread step nine tenths (bench/contention.md). About once a second
// (after a step) this reads the CPU time the machine spent (/proc/stat) less this process's own
// (getrusage), and sets LibTorch's threads to threads_beside() of it: fewer while other processes
// work, all of them again when they stop. Inactive when the thread count was chosen by hand
// (train.threads, OMP_NUM_THREADS) or split among ranks, or off the CPU.
class ThreadGovernor {
 public:
  ThreadGovernor(int threads, bool adaptive);
  void after_step();
  int threads() const { return threads_; }

 private:
  struct Sample {
    std::chrono::steady_clock::time_point wall;
    double machine_busy_s = 0.0;
    double own_s = 0.0;
  };
  static Sample sample();

  int max_threads_;
  int threads_;
  int cores_;
  bool active_;
  Sample last_;
};

}  // namespace vit::app
