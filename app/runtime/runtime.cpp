#include "app/runtime/runtime.h"

#include "app/errors.h"
#include "app/runtime/blas_kernels.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <fmt/format.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <torch/cuda.h>

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

namespace vit::app {

torch::Device select_device(const std::string& name, int64_t local_rank) {
  const bool cuda = torch::cuda::is_available();
  const auto rank_gpu = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank));
  if (name == "auto" && !cuda) return torch::Device(torch::kCPU);
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (!cuda) throw ConfigError("train.device: '" + name + "' requested but this LibTorch sees no CUDA device");
  const auto device = name == "auto" || name == "cuda" ? rank_gpu : torch::Device(name);
  if (device.has_index() && device.index() >= static_cast<int>(torch::cuda::device_count())) {
    throw ConfigError("train.device: '" + name + "' but only " + std::to_string(torch::cuda::device_count()) +
                      " CUDA devices are visible");
  }
  return device;
}

namespace {

// A positive integer environment variable, else 0.
int positive_environment(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr) return 0;
  int value = 0;
  const auto* end = text + std::strlen(text);
  const auto [ptr, error] = std::from_chars(text, end, value);
  return error == std::errc() && ptr == end && value > 0 ? value : 0;
}

// The cores this process may run on (taskset, cgroup cpusets), not all the machine's.
int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace

ThreadCount choose_threads(int64_t threads) {
  if (threads > 0) return {static_cast<int>(threads), "train.threads"};
  if (const int omp = positive_environment("OMP_NUM_THREADS"); omp > 0) return {omp, "OMP_NUM_THREADS"};
  const int cores = usable_cores();
  if (const int ranks = positive_environment("LOCAL_WORLD_SIZE"); ranks > 1) {
    return {std::max(1, cores / ranks), fmt::format("{} cores / {} local ranks", cores, ranks)};
  }
  return {cores, "one per core"};
}

ThreadCount configure_threads(int64_t threads) {
  const auto chosen = choose_threads(threads);
  at::set_num_threads(chosen.count);
  const auto blas = loaded_blas();
  if (blas.slow) {
    spdlog::warn(
        "SLOW BLAS: LibTorch's matrix products run on {} ({}), about 12x slower than OpenBLAS. "
        "Install libopenblas0-openmp (apt-get install libopenblas0-openmp) or select it with "
        "update-alternatives --config libblas.so.3-x86_64-linux-gnu",
        blas.name, blas.path);
  }
  const auto kernels = blas_kernels();
  if (!kernels.replaced.empty()) {
    spdlog::debug("OpenBLAS took this CPU for a {}; its {} kernels run instead (OPENBLAS_CORETYPE chooses others)",
                  kernels.replaced, kernels.name);
  }
  if (!kernels.ignored_request.empty()) {
    spdlog::warn("OPENBLAS_CORETYPE='{}' names none of OpenBLAS's kernel sets; its {} kernels run",
                 kernels.ignored_request, kernels.name);
  }
  return chosen;
}

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

BlasLibrary classify_blas(const std::string& resolved_path) {
  const auto contains = [&](const char* part) { return resolved_path.find(part) != std::string::npos; };
  BlasLibrary blas{"unknown", resolved_path, false};
  if (contains("openblas")) {
    const auto folder = std::filesystem::path(resolved_path).parent_path().filename().string();
    const auto variant = folder.rfind("openblas-", 0) == 0 ? folder.substr(9) : std::string();
    blas.name = variant.empty() ? "OpenBLAS" : "OpenBLAS (" + variant + ")";
  } else if (contains("mkl")) {
    blas.name = "MKL";
  } else if (contains("blis")) {
    blas.name = "BLIS";
  } else if (contains("atlas")) {
    blas.name = "ATLAS";
  } else if (contains("/blas/libblas.so") || contains("/libblas.so.3.")) {
    // Debian's libblas3 (Netlib) installs /usr/lib/<triplet>/blas/libblas.so.3.
    blas.name = "reference BLAS (Netlib)";
    blas.slow = true;
  } else if (resolved_path.empty()) {
    blas.name = "built into LibTorch";
  }
  return blas;
}

BlasLibrary loaded_blas() {
  void* sgemm = dlsym(RTLD_DEFAULT, "sgemm_");
  Dl_info info{};
  if (sgemm == nullptr || dladdr(sgemm, &info) == 0 || info.dli_fname == nullptr) return classify_blas("");
  std::error_code error;
  const auto resolved = std::filesystem::canonical(info.dli_fname, error);
  return classify_blas(error ? std::string(info.dli_fname) : resolved.string());
}

std::string loaded_allocator() {
  Dl_info info{};
  void* allocate = dlsym(RTLD_DEFAULT, "malloc");
  if (allocate == nullptr || dladdr(allocate, &info) == 0 || info.dli_fname == nullptr) return "unknown";
  return std::filesystem::path(info.dli_fname).filename().string();
}

}  // namespace vit::app
