#pragma once

namespace CLI {
class App;
}

namespace vit::app {

// `vit completion bash` and `vit man`: the shell completion script and the manual page, both
// generated from the command line's own definitions (and the config keys for --set).
void add_manual_commands(CLI::App& app, int& exit_code);

}  // namespace vit::app
