#include "models/layers/residual_stream.h"

#include "models/kernels/autocast_state.h"
#include "models/kernels/bf16_products.h"

#include <c10/util/Exception.h>

namespace vit::models {

torch::Tensor ResidualStream::value() const {
  return pending.value.defined() ? residual_add(residual, pending) : residual;
}

bool reads_bf16_values(const torch::Tensor& x) {
  return linear_input_dtype(x) == torch::kBFloat16 && bf16_products_on_blas(x);
}

NormalizedSum normalize(const ResidualStream& x, torch::nn::LayerNorm& norm, at::ScalarType dtype) {
  if (!x.pending.value.defined()) return {x.residual, norm(x.residual)};
  return residual_layer_norm(x.residual, x.pending, norm->weight, norm->bias, norm->options.eps(), dtype);
}

NormalizedSum normalize_for_products(const ResidualStream& x, torch::nn::LayerNorm& norm, bool bf16_values_read) {
  if (!bf16_values_read) return normalize(x, norm, linear_input_dtype(x.residual));
  if (!x.pending.value.defined()) return {x.residual, bf16_values(norm(x.residual))};
  TORCH_INTERNAL_ASSERT(!x.pending.bias.defined(), "a branch on the fp32 kernels' bf16 products adds its own bias");
  return residual_layer_norm_to_bf16_values(x.residual, x.pending, norm->weight, norm->bias, norm->options.eps());
}

}  // namespace vit::models
