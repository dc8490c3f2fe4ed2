#pragma once

namespace CLI {
class App;
}

namespace vit::app {

// `vit bench`: synthetic-data throughput of the training step, of evaluation and of the exported
// TorchScript module, for the model and train.* settings of a config.
void add_bench_command(CLI::App& app, int& exit_code);

}  // namespace vit::app
