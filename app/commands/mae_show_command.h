#pragma once

namespace CLI {
class App;
}

namespace vit::app {

// `vit mae-show`: what a masked autoencoder makes of images (original | masked | reconstruction).
void add_mae_show_command(CLI::App& app, int& exit_code);

}  // namespace vit::app
