#include "models/kernels/bf16_products.h"

#include "models/kernels/blas.h"

#include <torch/csrc/jit/frontend/tracer.h>

#include <atomic>

namespace vit::models {
namespace {

std::atomic<Bf16Products> chosen_products{Bf16Products::kOneDnn};

}  // namespace

void set_bf16_products(Bf16Products products) { chosen_products = products; }

Bf16Products bf16_products() { return chosen_products; }

bool bf16_products_on_blas(const at::Tensor& operand) {
  return chosen_products == Bf16Products::kFp32Blas && operand.device().is_cpu() && blas::system_blas_available() &&
         !torch::jit::tracer::isTracing();
}

at::Tensor bf16_values(const at::Tensor& x) {
  return x.scalar_type() == at::kBFloat16 ? x.to(at::kFloat) : x.to(at::kBFloat16).to(at::kFloat);
}

}  // namespace vit::models
