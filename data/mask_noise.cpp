#include "data/mask_noise.h"

#include "data/random.h"

namespace vit::data {

torch::Tensor mask_noise(const torch::Tensor& indices, uint64_t seed, int64_t epoch, int64_t count) {
  const auto index = indices.to(torch::kCPU, torch::kInt64).contiguous();
  auto noise = torch::empty({index.size(0), count}, torch::kFloat32);
  auto rows = noise.accessor<float, 2>();
  const auto* sample = index.data_ptr<int64_t>();
  for (int64_t i = 0; i < index.size(0); ++i) {
    Random random(seed, kMaskStream, static_cast<uint64_t>(epoch), static_cast<uint64_t>(sample[i]));
    for (int64_t j = 0; j < count; ++j) rows[i][j] = static_cast<float>(random.uniform());
  }
  return noise;
}

}  // namespace vit::data
