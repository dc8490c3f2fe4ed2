#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace vit::app {

// Runs `argv` (argv[0] looked up in PATH) with this process's stdout and stderr, and waits: its
// exit code, 127 when it cannot be started, 128 + N when signal N ended it.
int run_program(const std::vector<std::string>& argv);
// The folder of the running vit binary.
std::filesystem::path executable_dir();
// The Python with torch that vitcpp's scripts run on: VIT_PYTHON, else Debian's /usr/bin/python3
// (which has python3-torch; another python3 first in PATH, a virtualenv or pyenv, often has not).
std::string python_interpreter();

}  // namespace vit::app
