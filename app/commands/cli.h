#pragma once

namespace vit::app {

// Parses the command line, runs the chosen subcommand and returns the process exit code.
// Never throws: every failure becomes one "error: ..." line on stderr and an ExitCode.
int run_cli(int argc, char** argv);

}  // namespace vit::app
