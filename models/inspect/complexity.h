#pragma once

#include "models/core/image_model.h"

#include <string>
#include <vector>

namespace vit::models {

struct ModuleCost {
  std::string name;       // a direct parameter or a child holding parameters ("patch_embed", "blocks.3", ...)
  int64_t parameters;     // learnable parameters owned by it
  int64_t macs;           // multiply-accumulates per image in the forward pass
  int64_t executed_macs;  // those vitcpp's forward runs (ImageModelImpl::executed_macs)
};

// Size and forward cost of one model, from its parameters and its architecture's cost model.
// MACs count the matrix products (for a ViT: patch projection, qkv, QK^T, attention x V, output
// projection, MLP, head); normalisation, softmax, activations and additions are left out, as
// fvcore/timm do. FLOPs = 2 x MACs.
struct ModelComplexity {
  int64_t parameters = 0;  // learnable parameters
  int64_t tokens = 0;      // sequence length including the class token
  int64_t macs = 0;
  int64_t executed_macs = 0;
  int64_t activation_bytes = 0;  // kept per image between forward and backward in training (fp32)
  std::vector<ModuleCost> modules;

  double gflops() const { return 2.0 * static_cast<double>(macs) / 1e9; }
  double executed_gflops() const { return 2.0 * static_cast<double>(executed_macs) / 1e9; }
};

ModelComplexity measure_complexity(const ImageModelImpl& model);

}  // namespace vit::models
