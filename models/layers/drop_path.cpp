#include "models/layers/drop_path.h"

#include "models/layers/dropout.h"

#include <vector>

namespace vit::models {

DropPathImpl::DropPathImpl(double drop_prob) : drop_prob_(drop_prob) {
  TORCH_CHECK(drop_prob >= 0.0 && drop_prob < 1.0, "DropPath: drop_prob must be in [0, 1), got ", drop_prob);
}

bool draws_random_numbers(const torch::nn::Module& module) {
  for (const auto& part : module.modules()) {
    if (const auto* dropout = dynamic_cast<const DropoutImpl*>(part.get())) {
      if (dropout->p() > 0.0) return true;
    }
    if (const auto* drop_path = dynamic_cast<const DropPathImpl*>(part.get())) {
      if (drop_path->drop_prob() > 0.0) return true;
    }
  }
  return false;
}

double drop_path_at(double rate, int64_t block, int64_t blocks) {
  return blocks > 1 ? rate * static_cast<double>(block) / static_cast<double>(blocks - 1) : rate;
}

torch::Tensor DropPathImpl::sample_factors(const torch::Tensor& x, c10::ScalarType dtype) {
  if (!is_training() || drop_prob_ == 0.0) return {};
  const double keep_prob = 1.0 - drop_prob_;
  std::vector<int64_t> per_sample_shape(x.dim(), 1);
  per_sample_shape[0] = x.size(0);
  return torch::empty(per_sample_shape, x.options().dtype(dtype))
      .bernoulli_(keep_prob, LayerRandomness::current())
      .div_(keep_prob);
}

torch::Tensor DropPathImpl::forward(const torch::Tensor& x) {
  const auto factors = sample_factors(x, x.scalar_type());
  return factors.defined() ? x * factors : x;
}

}  // namespace vit::models
