#pragma once

namespace CLI {
class App;
}

namespace vit::app {

// `vit eval`: accuracy, loss, per-class accuracy and a confusion matrix of a checkpoint.
void add_eval_command(CLI::App& app, int& exit_code);

}  // namespace vit::app
