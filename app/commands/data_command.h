#pragma once

namespace CLI {
class App;
}

namespace vit::app {

// `vit data inspect` (class counts, image sizes, a grid of augmented samples) and
// `vit data bench` (loader throughput).
void add_data_command(CLI::App& app, int& exit_code);

}  // namespace vit::app
