#pragma once

namespace vit::app {

// Catches SIGINT, SIGTERM and SIGHUP for the lifetime of the object so that a long job can
// finish its current step and save before exiting.
class StopSignals {
 public:
  enum class Second {
    // A training process: the first signal asks for a stop after the current step (and says so
    // on stderr when `announce`); a second one removes the file being written and ends the
    // process at once, exit code 128 + signal, the last saved checkpoint intact.
    StopsAtOnce,
    // A launcher that forwards every signal to its ranks: each is counted, none ends it.
    IsCounted,
  };
  StopSignals(Second second, bool announce);
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // 0 while no signal arrived, else the first one's number.
  int received() const;
  // How many arrived.
  int count() const;
};

}  // namespace vit::app
