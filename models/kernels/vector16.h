#pragma once

// Sixteen-float AVX-512 vectors with AVX512-BF16's rounding to bf16, for the kernels that sit
// between bf16 products (bf16_products.h): rounding to bf16 values, GELU; the lanes of a partial
// vector and e^x, for the fp32 kernels.
// Functions marked VIT_AVX512_BF16 may run only where avx512_bf16_available() says so, those
// marked VIT_AVX512F where avx512f_available() does. Included by kernel sources only: it pulls in
// <immintrin.h>.

#include <cstdint>

namespace vit::models::vector16 {
// Elements per task of at::parallel_for in these element-wise kernels: ~20 µs of work.
constexpr int64_t kElementsPerTask = 1 << 15;

// at::parallel_for's grain over items (rows, blocks of rows) of this many elements each: about
// kElementsPerTask elements a task, at least one item.
inline int64_t items_per_task(int64_t elements_per_item) {
  return elements_per_item >= kElementsPerTask ? 1 : kElementsPerTask / (elements_per_item > 0 ? elements_per_item : 1);
}
}  // namespace vit::models::vector16

#if defined(__x86_64__)
#include <immintrin.h>

// GCC 12 warns inside its own AVX-512 headers, on their _mm512_undefined_* placeholders: a false
// positive (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include "models/kernels/exp_constants.h"

#define VIT_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16")))
#define VIT_AVX512F __attribute__((target("avx512f")))

namespace vit::models::vector16 {

inline bool avx512f_available() {
  static const bool available = __builtin_cpu_supports("avx512f");
  return available;
}

inline bool avx512_bf16_available() {
  static const bool available = avx512f_available() && __builtin_cpu_supports("avx512bw") &&
                                __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
  return available;
}

// The lanes of elements i .. min(i + 16, end).
inline __mmask16 lanes(int64_t i, int64_t end) {
  return end - i >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1U << (end - i)) - 1);
}

// The first `count` lanes: none for count <= 0, all for count >= 16 (a row's lanes past its end).
inline __mmask16 first_lanes(int64_t count) { return count <= 0 ? 0 : lanes(0, count); }

// The bf16 nearest each value, rounded to nearest even as c10::BFloat16 rounds, except that
// subnormals count as zeros (the instruction's rule; no activation or gradient here is one).
VIT_AVX512_BF16 inline __m256i bf16_bits(__m512 x) { return reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(x)); }

// A bf16 is the upper half of the fp32 of the same value.
VIT_AVX512_BF16 inline __m512 widened(__m256i bits) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16));
}

VIT_AVX512_BF16 inline __m512 bf16_rounded(__m512 x) { return widened(bf16_bits(x)); }

// rounded[i] = x[i] rounded to the bf16 nearest it, held in fp32, for i in [begin, end) (in place
// where rounded is x).
VIT_AVX512_BF16 inline void round_to_bf16_values(const float* x, float* rounded, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; i += 16) {
    const auto mask = lanes(i, end);
    _mm512_mask_storeu_ps(rounded + i, mask, bf16_rounded(_mm512_maskz_loadu_ps(mask, x + i)));
  }
}

// e^x (models/kernels/exp_constants.h).
VIT_AVX512F inline __m512 exp_of(__m512 x) {
  using namespace exp_constants;
  const auto lowest = _mm512_set1_ps(kLowest);
  const __mmask16 kept = _mm512_cmp_ps_mask(x, lowest, _CMP_NLT_UQ);  // not below: NaN kept
  x = _mm512_max_ps(lowest, x);
  const auto n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT);
  auto r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2High), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Low), r);
  auto p = _mm512_set1_ps(kPolynomial[0]);
  for (int i = 1; i < 6; ++i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kPolynomial[i]));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0F)));
  const auto power = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_maskz_mul_ps(kept, p, _mm512_castsi512_ps(power));
}

}  // namespace vit::models::vector16

#else

namespace vit::models::vector16 {
inline bool avx512_bf16_available() { return false; }
inline bool avx512f_available() { return false; }
}  // namespace vit::models::vector16

#endif
