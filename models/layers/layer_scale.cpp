#include "models/layers/layer_scale.h"

namespace vit::models {

LayerScaleImpl::LayerScaleImpl(int64_t dim, double init_value)
    : gamma_(register_parameter("gamma", torch::full({dim}, init_value))) {}

torch::Tensor LayerScaleImpl::forward(const torch::Tensor& x) { return x * gamma_; }

}  // namespace vit::models
