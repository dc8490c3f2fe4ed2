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

// An MLP's two layers with GELU between, fc2(GELU(fc1(input))), under bf16 autocast, differentiable,
// for an input [..., K], fp32 weights [H, K] and [N, H], an fp32 bias [H] for fc1 and one [N] or
// none for fc2; bf16 [..., N].
//
// Apart, fc1's product is written to memory and read back by GELU's pass (which adds the bias), and
// backward fc2's input gradient is written and read back by GELU's backward: ViT-Ti/16's hidden
// activations are 4.6 MiB a core's batch slice, beyond L2. Here GELU is applied to fc1's sums as
// they are written, h = bf16(sums + bias) kept for the backward beside GELU(h), and backward GELU's
// derivative at h is applied to fc2's input-gradient sums as they are written, dh = bf16(bf16(sums)
// · gelu'(h)), fc1's bias gradient summed from dh on the way. The values are those of fc1 and fc2 as
// amx_linear computes them with bf16_gelu.h's GELU between, but that fc1's bias is added in fp32
// (bf16_gelu.h's gelu_of_bf16_product_plus_bias takes it so, without autocast's rounding of it) and
// h is rounded once (that function rounds the product and then the sum); fc1's bias gradient is the
// fp32 sum of dh's rows. The weights' gradients are amx_weight_gradient's.
bool amx_mlp_applies(const at::Tensor& input, const at::Tensor& fc1_weight, const at::Tensor& fc2_weight);
at::Tensor amx_mlp(const at::Tensor& input, const at::Tensor& fc1_weight, const at::Tensor& fc1_bias,
                   const at::Tensor& fc2_weight, const at::Tensor& fc2_bias);

// grad_output^T · input in fp32 [N, K], for bf16 grad_output [R, N] and input [R, K] whose N and K
// amx_linear_applies takes; sums in fp32.
at::Tensor amx_weight_gradient(const at::Tensor& grad_output, const at::Tensor& input);

}  // namespace vit::models
