#pragma once

#include "models/kernels/bf16_products.h"

#include <string>
#include <string_view>

namespace vit::app {

// The vector instructions this CPU has and the operating system lets programs use.
struct VectorExtensions {
  bool avx2_fma = false;
  bool avx512 = false;       // F, CD, BW, DQ and VL: what OpenBLAS's SkylakeX kernels use
  bool avx512_bf16 = false;  // what its Cooperlake kernels add
  bool amx_bf16 = false;     // the tile units oneDNN's bf16 products run on
};
VectorExtensions this_cpu_vector_extensions();

// OpenBLAS picks its kernels once, as it loads, from a table of the CPUs it knew when it was built;
// a newer CPU gets its generic "Prescott" kernels (SSE3), 4-8x slower fp32 products than the CPU can
// run. The kernel set that fits `cpu` when OpenBLAS's choice is that fallback, else "" (its choice
// stands).
std::string kernels_for_unrecognised_cpu(std::string_view openblas_choice, const VectorExtensions& cpu);

struct BlasKernels {
  std::string name;               // OpenBLAS's kernel set in use ("Cooperlake"), "" for another BLAS
  std::string replaced;           // the fallback vit replaced ("Prescott"), else ""
  bool from_environment = false;  // OPENBLAS_CORETYPE chose them
  std::string ignored_request;    // an OPENBLAS_CORETYPE that names none of OpenBLAS's kernel sets
};

// Run first thing in main, before any matrix product: where OpenBLAS took this CPU for one it does
// not know, it starts over with the kernels that fit (OpenBLAS's own quit and init, which read
// OPENBLAS_CORETYPE; the variable is also set for child processes). A user's OPENBLAS_CORETYPE wins.
void fit_blas_kernels_to_cpu();
// What that call chose, or OpenBLAS's own choice when it was never called.
BlasKernels blas_kernels();

// Where the CPU's bf16 matrix products run (models/kernels/bf16_products.h), and why.
struct Bf16ProductsChoice {
  models::Bf16Products products = models::Bf16Products::kOneDnn;
  std::string reason;  // for `vit --version` and the log
};

// oneDNN's bf16 products outrun the fp32 BLAS kernels only on CPUs with AMX (1,349 against ~260
// GFLOP/s on two cores of the Xeons measured); elsewhere bf16 values go to the fp32 kernels, unless
// the system BLAS is missing or Netlib's reference implementation.
Bf16ProductsChoice bf16_products_for(const VectorExtensions& cpu, bool fast_system_blas);
// "onednn" or "blas": the names VIT_BF16_PRODUCTS takes and `vit bench --json` reports.
const char* bf16_products_name(models::Bf16Products products);
// Sets the models' bf16 products from that rule for this CPU and BLAS, or from VIT_BF16_PRODUCTS
// ("onednn" or "blas") where set; another value is a ConfigError that names the variable.
void choose_bf16_products();
Bf16ProductsChoice chosen_bf16_products();
// "KERNELS (REASON)", as `vit --version` and the training log say it.
std::string describe(const Bf16ProductsChoice& choice);

}  // namespace vit::app
