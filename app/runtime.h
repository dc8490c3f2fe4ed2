#pragma once

#include <torch/types.h>

#include <string>

namespace vit::app {

// "auto" picks CUDA when LibTorch sees a GPU, else the CPU; "cuda[:N]" without a GPU is a
// ConfigError. "auto" and "cuda" without an index mean GPU `local_rank` (one GPU per local rank).
torch::Device select_device(const std::string& name, int64_t local_rank = 0);

// Sets LibTorch's intra-op threads (`threads`, or one per core when 0) and warns loudly when the
// BLAS serving LibTorch's CPU matrix products is Netlib's reference implementation.
void configure_threads(int64_t threads);

// The most resident memory this process has used so far, in MiB.
double peak_rss_mb();

struct BlasLibrary {
  std::string name;   // "OpenBLAS (openmp)", "reference BLAS (Netlib)", "MKL", ... or "unknown"
  std::string path;   // the shared object that provides sgemm_, symlinks resolved
  bool slow = false;  // Netlib's reference implementation: ~12x slower GEMMs than OpenBLAS
};

// Which library a path to the object providing sgemm_ is.
BlasLibrary classify_blas(const std::string& resolved_path);
// The library that sgemm_ resolves to in this process.
BlasLibrary loaded_blas();

// The file name of the shared object serving malloc in this process, e.g. "libc.so.6" or
// "libtcmalloc_minimal.so.4".
std::string loaded_allocator();

}  // namespace vit::app
