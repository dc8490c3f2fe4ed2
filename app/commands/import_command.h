#pragma once

namespace CLI {
class App;
}

namespace vit::app {

// `vit import`: pretrained timm / torchvision / DeiT weights to a vitcpp checkpoint.
void add_import_command(CLI::App& app, int& exit_code);

}  // namespace vit::app
