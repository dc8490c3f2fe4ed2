#include "app/commands/cli.h"
#include "app/runtime/blas_kernels.h"

int main(int argc, char** argv) {
  vit::app::fit_blas_kernels_to_cpu();
  return vit::app::run_cli(argc, argv);
}
