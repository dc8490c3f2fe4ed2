#pragma once

#include "models/kernels/residual_layer_norm.h"

#include <torch/nn/modules/normalization.h>

namespace vit::models {

// The token states between pre-norm blocks: residual + pending, where `pending` is the last block's
// MLP branch not yet added (its value undefined: none), so that the next LayerNorm adds it in the
// same pass (models/kernels/residual_layer_norm), with what its last linear layer and stochastic
// depth left for that pass to do: the bias, the rounding to bf16, each sample's factor.
struct ResidualStream {
  torch::Tensor residual;
  ResidualBranch pending;

  torch::Tensor value() const;
};

// Whether a block's linear layers multiply bf16 values on the fp32 kernels (bf16 autocast, products
// on the BLAS): then its LayerNorms write their rows as bf16 values in fp32, which those products
// read as they are (the layers' forward_bf16_values).
bool reads_bf16_values(const torch::Tensor& x);

// The stream's value and norm(value), the pending branch added in the same pass: `normalized` in
// `dtype`, or LayerNorm's own output where nothing is pending (a linear layer reading it casts it
// the same way).
NormalizedSum normalize(const ResidualStream& x, torch::nn::LayerNorm& norm, at::ScalarType dtype);

// The same for the block's linear layers to read: as bf16 values in fp32 where `bf16_values_read`
// (reads_bf16_values of the residual), else in their input dtype.
NormalizedSum normalize_for_products(const ResidualStream& x, torch::nn::LayerNorm& norm, bool bf16_values_read);

}  // namespace vit::models
