#pragma once

namespace CLI {
class App;
}

namespace vit::app {

// `vit train`: trains a model from a config (or resumes a run), writing checkpoints, metrics,
// plots and the effective config into a run directory.
void add_train_command(CLI::App& app, int& exit_code);

}  // namespace vit::app
