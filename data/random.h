#pragma once

#include <cmath>
#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

namespace vit::data {

// A small deterministic generator (SplitMix64). Every draw in the data pipeline comes from one
// of these, seeded from (seed, epoch, sample or batch index), so what a run sees does not depend
// on the worker count, the world size, the resume point or the standard library.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  Random(uint64_t seed, uint64_t stream, uint64_t epoch, uint64_t index)
      : state_(mix(mix(mix(mix(seed) ^ stream) ^ epoch) ^ index)) {}

  uint64_t next() {
    state_ += 0x9E3779B97F4A7C15ull;
    return mix(state_);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  int64_t integer(int64_t low, int64_t high_exclusive) {  // [low, high)
    const auto span = static_cast<uint64_t>(high_exclusive - low);
    return low + static_cast<int64_t>(next() % span);
  }
  bool bernoulli(double p) { return uniform() < p; }
  double normal() {  // Box-Muller
    const double u = 1.0 - uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(2.0 * M_PI * uniform());
  }
  double gamma(double shape);  // Marsaglia-Tsang
  double beta(double a, double b) {
    const double x = gamma(a);
    return x / (x + gamma(b));
  }

 private:
  static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t state_;
};

inline double Random::gamma(double shape) {
  if (shape < 1.0) return gamma(shape + 1.0) * std::pow(uniform() + 1e-300, 1.0 / shape);
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  while (true) {
    double x = 0.0;
    double v = 0.0;
    do {
      x = normal();
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = uniform();
    if (u < 1.0 - 0.0331 * x * x * x * x || std::log(u + 1e-300) < 0.5 * x * x + d * (1.0 - v + std::log(v))) {
      return d * v;
    }
  }
}

// 0..n-1 in the order of a Fisher-Yates shuffle driven by `random`.
inline std::vector<size_t> random_permutation(size_t n, Random& random) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  for (size_t i = n; i > 1; --i) {
    std::swap(order[i - 1], order[static_cast<size_t>(random.integer(0, static_cast<int64_t>(i)))]);
  }
  return order;
}

// Streams keep the draws of different consumers of one (seed, epoch) apart.
enum RandomStream : uint64_t {
  kShuffleStream = 1,
  kAugmentStream = 2,
  kMixStream = 3,
  kSplitStream = 4,
  kMaskStream = 5,
};

}  // namespace vit::data
