#pragma once

#include <torch/types.h>

#include <string>

namespace vit::app {

// "auto" picks CUDA when LibTorch sees a GPU, else the CPU; "cuda[:N]" without a GPU is a
// ConfigError. "auto" and "cuda" without an index mean GPU `local_rank` (one GPU per local rank).
torch::Device select_device(const std::string& name, int64_t local_rank = 0);

// How many intra-op threads, and why: `threads` when > 0 (train.threads); else OMP_NUM_THREADS
// when set (torchrun sets 1 per rank); else the cores this process may run on, divided among the
// local ranks of a data-parallel job (LOCAL_WORLD_SIZE, set by torchrun and `vit train --nproc`).
struct ThreadCount {
  int count = 1;
  std::string source;  // for the log: "train.threads", "OMP_NUM_THREADS", "2 cores / 2 local ranks", ...
};
ThreadCount choose_threads(int64_t threads);
// Sets LibTorch's intra-op threads as choose_threads() says and warns loudly when the BLAS
// serving LibTorch's CPU matrix products is Netlib's reference implementation.
ThreadCount configure_threads(int64_t threads);

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
