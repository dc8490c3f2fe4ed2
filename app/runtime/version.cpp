#include "app/runtime/version.h"

#include "app/runtime/blas_kernels.h"

#include <ATen/Context.h>
#include <dlfcn.h>
#include <fmt/format.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <filesystem>

namespace vit::app {
namespace {

// The library that provides sgemm_ in this process (Debian's alternatives pick OpenBLAS or the
// reference BLAS at run time), with OpenBLAS's own build description when it is OpenBLAS.
std::string blas_in_use() {
  if (at::hasMKL()) return "MKL (built into LibTorch)";
  void* sgemm = ::dlsym(RTLD_DEFAULT, "sgemm_");
  Dl_info library{};
  if (sgemm == nullptr || ::dladdr(sgemm, &library) == 0 || library.dli_fname == nullptr) {
    return "none found (LibTorch's own kernels)";
  }
  using ConfigFunction = const char* (*)();
  const auto openblas_config = reinterpret_cast<ConfigFunction>(::dlsym(RTLD_DEFAULT, "openblas_get_config"));
  // Debian's alternatives link (libblas.so.3) resolved to the library behind it.
  std::error_code error;
  auto file = std::filesystem::canonical(library.dli_fname, error).string();
  if (file.empty()) file = library.dli_fname;
  return openblas_config != nullptr ? fmt::format("{} ({})", openblas_config(), file) : file;
}

// Which of OpenBLAS's kernel sets runs, and who chose it.
std::string blas_kernels_line() {
  const auto kernels = blas_kernels();
  if (kernels.name.empty()) return "";
  auto chooser = kernels.from_environment   ? "set by OPENBLAS_CORETYPE"
                 : kernels.replaced.empty() ? "OpenBLAS's choice"
                                            : "chosen by vit: OpenBLAS took this CPU for a " + kernels.replaced;
  if (!kernels.ignored_request.empty()) {
    chooser += fmt::format("; OPENBLAS_CORETYPE='{}' names none of its kernel sets", kernels.ignored_request);
  }
  return fmt::format("\nBLAS kernels: {} ({})", kernels.name, chooser);
}

std::string bf16_products_line() { return "\nbf16 products: " + describe(chosen_bf16_products()); }

}  // namespace

std::string version_text() {
  const std::string git = *kGitDescription != '\0' ? fmt::format(" (git {})", kGitDescription) : "";
  const std::string cuda = torch::cuda::is_available()
                               ? fmt::format("available, {} device(s)", torch::cuda::device_count())
                               : "not available";
  return fmt::format("vitcpp {}{}\nLibTorch {}\nCUDA: {}\nBLAS: {}{}{}", kProjectVersion, git, TORCH_VERSION, cuda,
                     blas_in_use(), blas_kernels_line(), bf16_products_line());
}

}  // namespace vit::app
