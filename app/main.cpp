#include "app/commands/cli.h"

int main(int argc, char** argv) { return vit::app::run_cli(argc, argv); }
