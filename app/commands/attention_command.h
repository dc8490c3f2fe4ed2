#pragma once

namespace CLI {
class App;
}

namespace vit::app {

// `vit attention`: attention-rollout maps and per-head class-token attention as PNG overlays.
void add_attention_command(CLI::App& app, int& exit_code);

}  // namespace vit::app
