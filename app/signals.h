#pragma once

namespace vit::app {

// Catches SIGINT and SIGTERM for the lifetime of the object so a long job can finish its current
// step and save before exiting; a second signal of the same kind ends the process at once.
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // 0 while no signal arrived, else the signal number.
  int received() const;
};

}  // namespace vit::app
