#pragma once

#include <ATen/core/Tensor.h>

namespace vit::models {

// A pre-norm Transformer's residual add and the LayerNorm that reads its result.
struct NormalizedSum {
  at::Tensor sum;         // residual + branch, in the residual's dtype
  at::Tensor normalized;  // LayerNorm(sum) over the last dimension, times weight, plus bias
};

// A residual branch as the pass that adds it reads it: value · factor, or (value + bias) · factor.
struct ResidualBranch {
  at::Tensor value;
  // The bias of the branch's last linear layer, left out of its product (fp32 [D]; undefined: none).
  // LibTorch's addmm copies a bias into every row of its output before the product, and sums the
  // output's gradient for the bias's in a pass of its own; the pass that adds the branch reads it
  // and writes the sum's gradient anyway.
  at::Tensor bias;
  // `value` is an fp32 product that bf16 autocast would cast to bf16 (a branch's last layer on the
  // fp32 kernels, bf16_products.h), read as its bf16 values and its gradient rounded to bf16
  // likewise: what the cast and its backward give, without their two passes.
  bool bf16_values = false;
  // Each sample's factor (stochastic depth's: DropPath::sample_factors), [B, 1, ...] in the dtype the
  // branch has or would have after its cast, applied in that dtype (undefined: none).
  at::Tensor factors;

  ResidualBranch() = default;
  ResidualBranch(at::Tensor plain);  // NOLINT(google-explicit-constructor): a branch as LibTorch's add reads it
  static ResidualBranch with_bias(at::Tensor product, at::Tensor bias);
  static ResidualBranch of_bf16_values(at::Tensor product);
  // The same branch times each sample's factor (undefined factors: unchanged).
  ResidualBranch times(at::Tensor per_sample_factors) const;
};

// residual + branch as LibTorch's operators give it (a bias added to the branch first, then the
// cast and the factors), differentiable.
at::Tensor residual_add(const at::Tensor& residual, const ResidualBranch& branch);

// Both outputs differentiable with respect to all inputs but the factors; `normalized` in
// `normalized_dtype` (the dtype of the layer that reads it: under autocast a linear layer would
// cast it anyway).
//
// Unfused, LibTorch makes the add (casting a bf16 branch to fp32 first), the LayerNorm, the cast
// of its output, and backward as many passes again, with the gradient of the sum added to
// LayerNorm's and cast back for the branch (the default model's bf16 training step ran 8 % faster
// without them; docs/performance.md), and stochastic depth a multiplication each way. For an
// fp32 residual, an fp32 or bf16 branch and fp32 weights, contiguous on a CPU with AVX2 and FMA,
// with one intra-op thread (a batch slice), each row here is one pass that writes both outputs
// (mean and variance from the row in L1, in fp32), and backward one pass that writes the residual's
// and the branch's gradients, the weight and bias gradients summed row after row. Otherwise, and
// under the TorchScript tracer, it is residual_add and LibTorch's layer_norm (and a cast).
NormalizedSum residual_layer_norm(const at::Tensor& residual, const ResidualBranch& branch, const at::Tensor& weight,
                                  const at::Tensor& bias, double eps, at::ScalarType normalized_dtype);

// Whether residual_layer_norm would run its kernel on a stream like `residual` (the vector
// kernels, one intra-op thread, not tracing, a CPU tensor; the shapes and dtypes of the call aside):
// where a layer may leave its bias to it.
bool residual_layer_norm_runs_kernel(const at::Tensor& residual);

// The same for a block whose linear layers multiply bf16 values on the fp32 kernels
// (bf16_products_on_blas): `normalized` rounded to bf16 and held in fp32, ready for the next product,
// and its incoming fp32 gradient rounded to bf16 as it is read — what writing bf16 rows, the
// product's cast of them to fp32, and that cast's backward give, without the two casts' passes.
NormalizedSum residual_layer_norm_to_bf16_values(const at::Tensor& residual, const ResidualBranch& branch,
                                                 const at::Tensor& weight, const at::Tensor& bias, double eps);

}  // namespace vit::models
