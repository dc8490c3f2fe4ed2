#include "models/layers/mlp.h"

namespace vit::models {

MlpImpl::MlpImpl(const MlpOptions& options)
    : fc1_(register_module("fc1", Linear(options.in_features, options.hidden_features))),
      act_(register_module("act", torch::nn::GELU())),
      drop1_(register_module("drop1", Dropout(options.drop))),
      fc2_(register_module("fc2", Linear(options.hidden_features, options.in_features))),
      drop2_(register_module("drop2", Dropout(options.drop))) {}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) { return drop2_(fc2_(drop1_(act_(fc1_(x))))); }

}  // namespace vit::models
