#pragma once

namespace CLI {
class App;
}

namespace vit::app {

// `vit export`: a checkpoint to a TorchScript file with its preprocessing metadata.
void add_export_command(CLI::App& app, int& exit_code);

}  // namespace vit::app
