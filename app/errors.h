#pragma once

#include <stdexcept>

namespace vit::app {

// The process exit codes every subcommand follows.
enum ExitCode : int {
  kExitSuccess = 0,
  kExitRuntimeError = 1,  // data, I/O or numerical failure while working
  kExitUsageError = 2,    // bad command line or configuration
  // 128 + N: stopped by signal N (130 SIGINT, 143 SIGTERM, 129 SIGHUP), as a shell reports it.
};

// A bad command line or configuration value; the message names the file, line and key.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A file the program keeps or ships (checkpoint, weight file, TorchScript module) that is
// unreadable, damaged or does not fit; the message names the file.
class FileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace vit::app
