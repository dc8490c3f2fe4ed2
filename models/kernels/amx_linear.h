#pragma once

#include <ATen/core/Tensor.h>

namespace vit::models {

// A bf16 linear layer on AMX's tile units: its forward, its input's gradient and its weight's.
//
// Under bf16 autocast LibTorch sends a linear layer's three products to oneDNN. In a ViT-Ti/16
// training step on a 2-core Xeon with AMX they ran at 431-820 GFLOP/s a core where the tile units
// reach ~1,600 on operands in cache: the forward's and the input gradient's outputs are activations,
// written to memory not in cache (with the bias first copied into every row of the output by addmm),
// and the weight gradient, grad_output^T · input, reads both operands along their rows (the tokens),
// which oneDNN reorders first.
//
// Here the forward and the input gradient run one kernel: the weight packed once per call as the
// tile product's B (pairs of its inner rows interleaved; in L2-sized column blocks), A's rows read
// in place in panels of 32, each 32 × 32 block summed in fp32 tiles over the whole inner dimension,
// the bias added to the sums and the result rounded to bf16 once, as oneDNN rounds it (the same
// bits, tested). The weight gradient takes the tokens in chunks of 256 rows that stay in L2: the
// narrower operand packed as B, the wider transposed in registers into A's rows, and the sums
// accumulated in fp32 tiles across the chunks (660-950 GFLOP/s on ViT and Swin shapes with operands
// out of cache, where oneDNN ran 460-540; docs/performance.md): autocast's fp32 sums in another
// order, rounded to bf16 as autocast rounds them. The bias gradient is LibTorch's row sum.

// Whether amx_linear takes a layer of this weight for this input: the process may use the tile
// units (amx.h), the input is on the CPU, and both sizes of the weight are non-zero multiples of 32.
bool amx_linear_applies(const at::Tensor& input, const at::Tensor& weight);

// input · weight^T + bias under bf16 autocast, differentiable, for an input [..., K], an fp32
// weight [N, K] and an fp32 bias [N] or none: autocast's casts (the bias's cached per autocast
// region; where a backward follows, the weight's made inside the node, which returns its gradient in
// fp32, rounded to bf16 values as autocast's cast node would, without that node's copies), then the
// tiles' product; bf16 [..., N].
at::Tensor amx_linear(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias);

// grad_output^T · input in fp32 [N, K], for bf16 grad_output [R, N] and input [R, K] whose N and K
// amx_linear_applies takes; sums in fp32.
at::Tensor amx_weight_gradient(const at::Tensor& grad_output, const at::Tensor& input);

}  // namespace vit::models
