#include "app/runtime/blas_kernels.h"

#include "app/errors.h"
#include "app/runtime/runtime.h"
#include "models/kernels/amx.h"
#include "models/kernels/blas.h"

#include <dlfcn.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace vit::app {
namespace {

// OpenBLAS's entry points, looked up in the process: LibTorch may serve its products from another
// BLAS (MKL in PyTorch's own LibTorch builds, Netlib's through Debian's alternatives).
template <typename Function>
Function openblas_function(const char* name) {
  return reinterpret_cast<Function>(::dlsym(RTLD_DEFAULT, name));
}

std::string openblas_kernels() {
  const auto core_name = openblas_function<char* (*)()>("openblas_get_corename");
  return core_name != nullptr ? std::string(core_name()) : std::string();
}

Bf16ProductsChoice& bf16_choice() {
  static Bf16ProductsChoice choice{models::bf16_products(), "LibTorch's choice"};
  return choice;
}

// OpenBLAS matches OPENBLAS_CORETYPE against its kernel sets' names without regard to case, and
// silently detects the CPU when the value names none of them.
bool names_kernels(std::string_view requested, std::string_view kernels) {
  return requested.size() == kernels.size() &&
         std::equal(requested.begin(), requested.end(), kernels.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
         });
}

BlasKernels& chosen_kernels() {
  static BlasKernels kernels = [] {
    BlasKernels loaded;
    loaded.name = openblas_kernels();
    if (const char* requested = std::getenv("OPENBLAS_CORETYPE"); requested != nullptr && !loaded.name.empty()) {
      loaded.from_environment = names_kernels(requested, loaded.name);
      if (!loaded.from_environment) loaded.ignored_request = requested;
    }
    return loaded;
  }();
  return kernels;
}

}  // namespace

VectorExtensions this_cpu_vector_extensions() {
  VectorExtensions cpu;
#if defined(__x86_64__)
  // The compiler's runtime checks the OS enables the registers (XCR0), not only CPUID's bits.
  __builtin_cpu_init();
  cpu.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  cpu.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vl");
  cpu.avx512_bf16 = cpu.avx512 && __builtin_cpu_supports("avx512bf16");
  cpu.amx_bf16 = models::amx_bf16_enabled();
#endif
  return cpu;
}

std::string kernels_for_unrecognised_cpu(std::string_view openblas_choice, const VectorExtensions& cpu) {
  // "Prescott" is also the right answer for a CPU without AVX2, which then keeps it.
  if (openblas_choice != "Prescott") return "";
  if (cpu.avx512_bf16) return "Cooperlake";
  if (cpu.avx512) return "SkylakeX";
  if (cpu.avx2_fma) return "Haswell";
  return "";
}

void fit_blas_kernels_to_cpu() {
  auto& kernels = chosen_kernels();
  if (kernels.from_environment || !kernels.replaced.empty()) return;
  const auto fitting = kernels_for_unrecognised_cpu(kernels.name, this_cpu_vector_extensions());
  const auto quit = openblas_function<void (*)()>("gotoblas_dynamic_quit");
  const auto init = openblas_function<void (*)()>("gotoblas_dynamic_init");
  if (fitting.empty() || quit == nullptr || init == nullptr) return;
  // OpenBLAS's init reads OPENBLAS_CORETYPE; set, it also gives child processes (the ranks of
  // `vit train --nproc`, the ONNX exporter's Python) the same kernels.
  ::setenv("OPENBLAS_CORETYPE", fitting.c_str(), 1);
  quit();
  init();
  const auto now = openblas_kernels();
  if (now == kernels.name) {  // this OpenBLAS was built without them
    if (kernels.ignored_request.empty()) {
      ::unsetenv("OPENBLAS_CORETYPE");
    } else {
      ::setenv("OPENBLAS_CORETYPE", kernels.ignored_request.c_str(), 1);
    }
    return;
  }
  kernels.replaced = kernels.name;
  kernels.name = now;
}

BlasKernels blas_kernels() { return chosen_kernels(); }

Bf16ProductsChoice bf16_products_for(const VectorExtensions& cpu, bool fast_system_blas) {
  if (cpu.amx_bf16) return {models::Bf16Products::kOneDnn, "chosen by vit: this CPU has AMX"};
  if (!fast_system_blas) return {models::Bf16Products::kOneDnn, "chosen by vit: no fast system BLAS"};
  return {models::Bf16Products::kFp32Blas, "chosen by vit: no AMX on this CPU"};
}

const char* bf16_products_name(models::Bf16Products products) {
  return products == models::Bf16Products::kFp32Blas ? "blas" : "onednn";
}

void choose_bf16_products() {
  auto& choice = bf16_choice();
  if (const char* forced = std::getenv("VIT_BF16_PRODUCTS"); forced != nullptr && *forced != '\0') {
    const std::string name = forced;
    const auto products = name == bf16_products_name(models::Bf16Products::kFp32Blas) ? models::Bf16Products::kFp32Blas
                                                                                      : models::Bf16Products::kOneDnn;
    if (name != bf16_products_name(products)) {
      throw ConfigError("VIT_BF16_PRODUCTS='" + name + "': expected onednn or blas (or unset, to let vit choose)");
    }
    choice = {products, "set by VIT_BF16_PRODUCTS"};
  } else {
    choice =
        bf16_products_for(this_cpu_vector_extensions(), models::blas::system_blas_available() && !loaded_blas().slow);
  }
  models::set_bf16_products(choice.products);
}

Bf16ProductsChoice chosen_bf16_products() { return bf16_choice(); }

std::string describe(const Bf16ProductsChoice& choice) {
  const std::string kernels =
      choice.products == models::Bf16Products::kFp32Blas ? "the BLAS's fp32 kernels on bf16 values" : "oneDNN";
  return kernels + " (" + choice.reason + ")";
}

}  // namespace vit::app
