#include "models/kernels/unpacked_gemm.h"

#include "models/kernels/vector16.h"

#include <algorithm>
#include <vector>

namespace vit::models {
#if defined(__x86_64__)

#define VIT_AVX512F __attribute__((target("avx512f")))

namespace {

// Multiply-adds of the products taken: from heads of [128, 64] (1 M) to operands of ~1 MiB (16 M).
constexpr int64_t kMinMultiplyAdds = int64_t{1} << 20;
constexpr int64_t kMaxMultiplyAdds = int64_t{1} << 24;
constexpr int64_t kMaxInner = 1024;

bool avx512f_available() {
  static const bool available = __builtin_cpu_supports("avx512f");
  return available;
}

// The bf16 nearest each value, held in fp32: rounded to nearest even, NaN to the quiet NaN, as
// c10::BFloat16 converts (subnormals included).
VIT_AVX512F inline __m512 bf16_rounded(__m512 x) {
  const auto bits = _mm512_castps_si512(x);
  const auto odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  const auto rounded = _mm512_and_si512(_mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7FFF)), odd),
                                        _mm512_set1_epi32(static_cast<int>(0xFFFF0000U)));
  const auto nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  return _mm512_castsi512_ps(_mm512_mask_mov_epi32(rounded, nan, _mm512_set1_epi32(0x7FC00000)));
}

// Where A's element (i, l) sits: a[i * row_stride + l * inner_stride].
struct Operand {
  const float* data;
  int64_t row_stride, inner_stride;
};

// What C's elements are written as.
struct Store {
  float* c;
  int64_t ldc;
  bool rounds_to_bf16;
};

// C[rows, 16 · vectors] (the last vector's columns masked by `last`) = alpha · A[rows, k] · B[k, ·],
// the sums in registers, over l = 0 … k − 1 in order.
template <int kRows, int kVectors>
VIT_AVX512F __attribute__((always_inline)) inline void tile(int64_t k, float alpha, Operand a, const float* b,
                                                            int64_t ldb, Store out, __mmask16 last) {
  const auto lanes = [last](int v) { return v == kVectors - 1 ? last : static_cast<__mmask16>(0xFFFF); };
  __m512 sums[kRows][kVectors];
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < kVectors; ++v) sums[r][v] = _mm512_setzero_ps();
  }
  for (int64_t l = 0; l < k; ++l) {
    __m512 row[kVectors];
#pragma GCC unroll 4
    for (int v = 0; v < kVectors; ++v) row[v] = _mm512_maskz_loadu_ps(lanes(v), b + l * ldb + 16 * v);
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) {
      const auto element = _mm512_set1_ps(a.data[r * a.row_stride + l * a.inner_stride]);
#pragma GCC unroll 4
      for (int v = 0; v < kVectors; ++v) sums[r][v] = _mm512_fmadd_ps(element, row[v], sums[r][v]);
    }
  }
  const auto scale = _mm512_set1_ps(alpha);
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < kVectors; ++v) {
      const auto product = _mm512_mul_ps(scale, sums[r][v]);
      _mm512_mask_storeu_ps(out.c + r * out.ldc + 16 * v, lanes(v),
                            out.rounds_to_bf16 ? bf16_rounded(product) : product);
    }
  }
}

// All m rows of one column block: tiles of 6 rows (8 where the block is 3 vectors wide: 24 sums in
// registers for blocks of 4 and 3 vectors), then the rows left in tiles of 4, 2 and 1.
template <int kVectors>
VIT_AVX512F void column_block(int64_t m, int64_t k, float alpha, Operand a, const float* b, int64_t ldb, Store out,
                              __mmask16 last) {
  constexpr int kRows = kVectors == 3 ? 8 : 6;
  int64_t i = 0;
  const auto rows_from = [&](int64_t row) {
    return Operand{a.data + row * a.row_stride, a.row_stride, a.inner_stride};
  };
  const auto store_from = [&](int64_t row) { return Store{out.c + row * out.ldc, out.ldc, out.rounds_to_bf16}; };
  for (; i + kRows <= m; i += kRows) tile<kRows, kVectors>(k, alpha, rows_from(i), b, ldb, store_from(i), last);
  if (m - i >= 4) {
    tile<4, kVectors>(k, alpha, rows_from(i), b, ldb, store_from(i), last);
    i += 4;
  }
  if (m - i >= 2) {
    tile<2, kVectors>(k, alpha, rows_from(i), b, ldb, store_from(i), last);
    i += 2;
  }
  if (m - i >= 1) tile<1, kVectors>(k, alpha, rows_from(i), b, ldb, store_from(i), last);
}

// Blocks of 4 vectors (64 columns), or of 3 where 4s would leave a block of 1 (5 and 9 vectors) or
// where two blocks of 3 cover the rest (6).
int vectors_in_next_block(int64_t vectors_left) {
  if (vectors_left < 4) return static_cast<int>(vectors_left);
  return vectors_left == 5 || vectors_left == 6 || vectors_left == 9 ? 3 : 4;
}

VIT_AVX512F void multiply(int64_t m, int64_t n, int64_t k, float alpha, Operand a, const float* b, int64_t ldb,
                          Store out) {
  int64_t vectors_left = (n + 15) / 16;
  for (int64_t j = 0; vectors_left > 0;) {
    const int vectors = vectors_in_next_block(vectors_left);
    vectors_left -= vectors;
    const int64_t columns = std::min<int64_t>(16 * vectors, n - j);
    const __mmask16 last = vector16::lanes(16 * (vectors - 1), columns);
    const Store block{out.c + j, out.ldc, out.rounds_to_bf16};
    switch (vectors) {
      case 4:
        column_block<4>(m, k, alpha, a, b + j, ldb, block, last);
        break;
      case 3:
        column_block<3>(m, k, alpha, a, b + j, ldb, block, last);
        break;
      case 2:
        column_block<2>(m, k, alpha, a, b + j, ldb, block, last);
        break;
      default:
        column_block<1>(m, k, alpha, a, b + j, ldb, block, last);
        break;
    }
    j += columns;
  }
}

VIT_AVX512F inline __m512d pairs_of(__m512 x) { return _mm512_castps_pd(x); }

// 16 rows of 16 floats (row r at source + r · source_stride) into their transpose (row r at
// target + r · target_stride): pairs of elements, then of pairs, then of 128-bit and 256-bit lanes.
VIT_AVX512F void transpose_16x16(const float* source, int64_t source_stride, float* target, int64_t target_stride) {
  __m512 rows[16], mixed[16];
  for (int r = 0; r < 16; ++r) rows[r] = _mm512_loadu_ps(source + r * source_stride);
  for (int r = 0; r < 16; r += 2) {
    mixed[r] = _mm512_unpacklo_ps(rows[r], rows[r + 1]);
    mixed[r + 1] = _mm512_unpackhi_ps(rows[r], rows[r + 1]);
  }
  for (int r = 0; r < 16; r += 4) {
    rows[r] = _mm512_castpd_ps(_mm512_unpacklo_pd(pairs_of(mixed[r]), pairs_of(mixed[r + 2])));
    rows[r + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(pairs_of(mixed[r]), pairs_of(mixed[r + 2])));
    rows[r + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(pairs_of(mixed[r + 1]), pairs_of(mixed[r + 3])));
    rows[r + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(pairs_of(mixed[r + 1]), pairs_of(mixed[r + 3])));
  }
  for (int half = 0; half < 16; half += 8) {
    for (int r = 0; r < 4; ++r) {
      mixed[half + r] = _mm512_shuffle_f32x4(rows[half + r], rows[half + 4 + r], 0x88);
      mixed[half + 4 + r] = _mm512_shuffle_f32x4(rows[half + r], rows[half + 4 + r], 0xdd);
    }
  }
  for (int r = 0; r < 8; ++r) {
    rows[r] = _mm512_shuffle_f32x4(mixed[r], mixed[8 + r], 0x88);
    rows[8 + r] = _mm512_shuffle_f32x4(mixed[r], mixed[8 + r], 0xdd);
  }
  for (int r = 0; r < 16; ++r) _mm512_storeu_ps(target + r * target_stride, rows[r]);
}

// source [rows, cols] (row stride source_stride) -> target [cols, rows], contiguous.
VIT_AVX512F void transpose(int64_t rows, int64_t cols, const float* source, int64_t source_stride, float* target) {
  int64_t r = 0;
  for (; r + 16 <= rows; r += 16) {
    int64_t col = 0;
    for (; col + 16 <= cols; col += 16)
      transpose_16x16(source + r * source_stride + col, source_stride, target + col * rows + r, rows);
    for (; col < cols; ++col) {
      for (int64_t x = r; x < r + 16; ++x) target[col * rows + x] = source[x * source_stride + col];
    }
  }
  for (; r < rows; ++r) {
    for (int64_t col = 0; col < cols; ++col) target[col * rows + r] = source[r * source_stride + col];
  }
}

}  // namespace

bool unpacked_gemm_applies(int64_t m, int64_t n, int64_t k) {
  const int64_t multiply_adds = m * n * k;
  return avx512f_available() && multiply_adds >= kMinMultiplyAdds && multiply_adds <= kMaxMultiplyAdds &&
         k <= kMaxInner;
}

void unpacked_gemm(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, bool transpose_a,
                   const float* b, int64_t ldb, bool transpose_b, float* c, int64_t ldc, bool rounds_to_bf16) {
  const Operand rows_of_a = transpose_a ? Operand{a, 1, lda} : Operand{a, lda, 1};
  const Store out{c, ldc, rounds_to_bf16};
  if (!transpose_b) {
    multiply(m, n, k, alpha, rows_of_a, b, ldb, out);
    return;
  }
  thread_local std::vector<float> rows_of_b;
  rows_of_b.resize(static_cast<size_t>(k * n));
  transpose(n, k, b, ldb, rows_of_b.data());
  multiply(m, n, k, alpha, rows_of_a, rows_of_b.data(), n, out);
}

#else

bool unpacked_gemm_applies(int64_t, int64_t, int64_t) { return false; }

void unpacked_gemm(int64_t, int64_t, int64_t, float, const float*, int64_t, bool, const float*, int64_t, bool, float*,
                   int64_t, bool) {}

#endif

}  // namespace vit::models
