#pragma once

// Sixteen-float AVX-512 vectors with AVX512-BF16's rounding to bf16, for the kernels that sit
// between bf16 products (bf16_products.h): rounding to bf16 values, GELU; and
// the lanes of a partial vector, for unpacked_gemm.
// Functions marked VIT_AVX512_BF16 may run only where avx512_bf16_available() says so. Included by
// kernel sources only: it pulls in <immintrin.h>.

#include <cstdint>

namespace vit::models::vector16 {
// Elements per task of at::parallel_for in these element-wise kernels: ~20 µs of work.
constexpr int64_t kElementsPerTask = 1 << 15;
}  // namespace vit::models::vector16

#if defined(__x86_64__)
#include <immintrin.h>

// GCC 12 warns inside its own AVX-512 headers, on their _mm512_undefined_* placeholders: a false
// positive (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#define VIT_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16")))

namespace vit::models::vector16 {

inline bool avx512_bf16_available() {
  static const bool available = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
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

}  // namespace vit::models::vector16

#else

namespace vit::models::vector16 {
inline bool avx512_bf16_available() { return false; }
}  // namespace vit::models::vector16

#endif
