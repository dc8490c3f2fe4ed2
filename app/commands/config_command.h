#pragma once

namespace CLI {
class App;
}

namespace vit::app {

// `vit config`: the configuration a command line resolves to, or the reference of every key.
void add_config_command(CLI::App& app, int& exit_code);

}  // namespace vit::app
