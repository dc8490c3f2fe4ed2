#pragma once

// Eight-float AVX2 vectors for the row kernels (softmax, residual LayerNorm): loads and stores of
// fp32 and bf16 rows and of bf16 values held in fp32, and horizontal reductions. Functions marked VIT_AVX2_FMA may run
// only where avx2_fma_available() says so. Included by kernel sources only: it pulls in <immintrin.h>.

#include <c10/util/BFloat16.h>

namespace vit::models::vector8 {

// A bf16 held as its value in fp32, as bf16 products on the fp32 kernels read their operands
// (bf16_products.h): rounded to bf16 as it is stored, and as it is read (a gradient arriving from
// such a product is an fp32 that autocast's cast would round).
struct Bf16Value {
  float value;

  Bf16Value() = default;
  explicit Bf16Value(float x) : value(static_cast<float>(c10::BFloat16(x))) {}
  explicit operator float() const { return static_cast<float>(c10::BFloat16(value)); }
};

}  // namespace vit::models::vector8

#if defined(__x86_64__)
#include <immintrin.h>

#define VIT_AVX2_FMA __attribute__((target("avx2,fma")))

namespace vit::models::vector8 {

inline bool avx2_fma_available() {
  static const bool available = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return available;
}

// Eight consecutive values as floats.
VIT_AVX2_FMA inline __m256 load(const float* p) { return _mm256_loadu_ps(p); }

VIT_AVX2_FMA inline __m256 load(const c10::BFloat16* p) {
  // A bf16 is the upper half of the fp32 of the same value.
  const auto halves = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(halves), 16));
}

VIT_AVX2_FMA inline void store(float* p, __m256 values) { _mm256_storeu_ps(p, values); }

// Each value's nearest bf16 in the low half of its lane: rounded to nearest even, NaN to the quiet
// NaN, as c10::BFloat16 converts.
VIT_AVX2_FMA inline __m256i bf16_halves(__m256 values) {
  const auto bits = _mm256_castps_si256(values);
  const auto odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  const auto rounded = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(0x7FFF)), odd), 16);
  const auto nan = _mm256_castps_si256(_mm256_cmp_ps(values, values, _CMP_UNORD_Q));
  return _mm256_blendv_epi8(rounded, _mm256_set1_epi32(0x7FC0), nan);
}

VIT_AVX2_FMA inline void store(c10::BFloat16* p, __m256 values) {
  const auto halves = bf16_halves(values);
  // packus interleaves the two 128-bit lanes; the permute puts the eight halves in order.
  const auto packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(halves, halves), 0xD8);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_castsi256_si128(packed));
}

VIT_AVX2_FMA inline __m256 bf16_rounded(__m256 values) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(bf16_halves(values), 16));
}

VIT_AVX2_FMA inline __m256 load(const Bf16Value* p) { return bf16_rounded(_mm256_loadu_ps(&p->value)); }

VIT_AVX2_FMA inline void store(Bf16Value* p, __m256 values) { _mm256_storeu_ps(&p->value, bf16_rounded(values)); }

VIT_AVX2_FMA inline float horizontal_max(__m256 v) {
  auto m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

VIT_AVX2_FMA inline float horizontal_sum(__m256 v) {
  auto s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

}  // namespace vit::models::vector8

#else

namespace vit::models::vector8 {
inline bool avx2_fma_available() { return false; }
}  // namespace vit::models::vector8

#endif
