#pragma once

#include <ATen/core/Tensor.h>

namespace vit::models {

// A pre-norm Transformer's residual add and the LayerNorm that reads its result.
struct NormalizedSum {
  at::Tensor sum;         // residual + branch, in the residual's dtype
  at::Tensor normalized;  // LayerNorm(sum) over the last dimension, times weight, plus bias
};

// Both outputs differentiable with respect to all inputs; `normalized` in `normalized_dtype`
// (the dtype of the layer that reads it: under autocast a linear layer would cast it anyway).
// `branch_bias`, where defined (fp32 [D]), is the bias of the branch's last linear layer, left out
// of its product and added here: sum = residual + (branch + branch_bias), in fp32. LibTorch's addmm
// copies a bias into every row of its output before the product, and sums the output's gradient
// for the bias's in a pass of its own (bf16's with fp32 sums); this pass reads the branch and
// writes the sum's gradient anyway. `branch_bf16_values`: `branch` is an fp32 product that bf16
// autocast would cast to bf16 (a branch's last layer on the fp32 kernels, bf16_products.h), read
// here as its bf16 values and its gradient rounded to bf16 likewise: what the cast and its backward
// give, without their two passes.
//
// Unfused, LibTorch makes the add (casting a bf16 branch to fp32 first), the LayerNorm, the cast
// of its output, and backward as many passes again, with the gradient of the sum added to
// LayerNorm's and cast back for the branch (the default model's bf16 training step ran 8 % faster
// without them; docs/performance.md). For an
// fp32 residual, an fp32 or bf16 branch and fp32 weights, contiguous on a CPU with AVX2 and FMA,
// with one intra-op thread (a batch slice), each row here is one pass that writes both outputs
// (mean and variance from the row in L1, in fp32), and backward one pass that writes the residual's
// and the branch's gradients, the weight and bias gradients summed row after row. Otherwise, and
// under the TorchScript tracer, it is LibTorch's add and layer_norm (and a cast).
NormalizedSum residual_layer_norm(const at::Tensor& residual, const at::Tensor& branch, const at::Tensor& weight,
                                  const at::Tensor& bias, double eps, at::ScalarType normalized_dtype,
                                  const at::Tensor& branch_bias = {}, bool branch_bf16_values = false);

// Whether residual_layer_norm would run its kernel on a stream like `residual` (the vector
// kernels, one intra-op thread, not tracing, a CPU tensor; the shapes and dtypes of the call aside):
// where a layer may leave its bias to it.
bool residual_layer_norm_runs_kernel(const at::Tensor& residual);

// The same for a block whose linear layers multiply bf16 values on the fp32 kernels
// (bf16_products_on_blas): `normalized` rounded to bf16 and held in fp32, ready for the next product,
// and its incoming fp32 gradient rounded to bf16 as it is read — what writing bf16 rows, the
// product's cast of them to fp32, and that cast's backward give, without the two casts' passes.
NormalizedSum residual_layer_norm_to_bf16_values(const at::Tensor& residual, const at::Tensor& branch,
                                                 const at::Tensor& weight, const at::Tensor& bias, double eps,
                                                 bool branch_bf16_values = false);

}  // namespace vit::models
