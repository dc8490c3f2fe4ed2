#pragma once

namespace CLI {
class App;
}

namespace vit::app {

// `vit info`: parameters, tokens, forward cost and a per-module table of a model.
void add_info_command(CLI::App& app, int& exit_code);

}  // namespace vit::app
