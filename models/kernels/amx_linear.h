#pragma once

#include <ATen/core/Tensor.h>

namespace vit::models {

// A bf16 linear layer whose weight gradient runs on AMX's tile units.
//
// Under bf16 autocast LibTorch sends a linear layer's three products to oneDNN. Its weight
// gradient, grad_output^T · input, reads both operands along their rows (the tokens), which its
// kernels must first reorder: in a ViT-Ti/16 training step on a 2-core Xeon with AMX these products
// ran at 431-507 GFLOP/s a core where the forward's ran at 590-820. Here the tokens are taken in
// chunks of 256 rows that stay in L2: the narrower operand packed as the tile product's B (pairs of
// rows interleaved), the wider transposed in registers into A's rows, and the sums accumulated in
// fp32 tiles across the chunks (660-950 GFLOP/s on ViT and Swin shapes with operands out of cache,
// where oneDNN ran 460-540; docs/performance.md). The forward and the input's gradient stay
// LibTorch's (oneDNN's); every value is what autocast's layer computes but for the order of the
// weight gradient's fp32 sums, which is rounded to bf16 as autocast rounds it.

// Whether amx_linear takes a layer of this weight for this input: the process may use the tile
// units (amx.h), the input is on the CPU, and both sizes of the weight are multiples of 32.
bool amx_linear_applies(const at::Tensor& input, const at::Tensor& weight);

// input · weight^T + bias under bf16 autocast, differentiable, for an input [..., K], an fp32
// weight [N, K] and an fp32 bias [N] or none: autocast's casts (the bias's cached per autocast
// region, the weight's made inside the node, which returns its gradient in fp32, rounded to bf16
// values as autocast's cast node would, without that node's copies), then LibTorch's bf16 product;
// bf16 [..., N].
at::Tensor amx_linear(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias);

// grad_output^T · input in fp32 [N, K], for bf16 grad_output [R, N] and input [R, K] whose N and K
// amx_linear_applies takes; sums in fp32.
at::Tensor amx_weight_gradient(const at::Tensor& grad_output, const at::Tensor& input);

}  // namespace vit::models
