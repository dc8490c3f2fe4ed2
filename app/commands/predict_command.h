#pragma once

namespace CLI {
class App;
}

namespace vit::app {

// `vit predict`: top-k classes of images with an exported model or a checkpoint.
void add_predict_command(CLI::App& app, int& exit_code);

}  // namespace vit::app
