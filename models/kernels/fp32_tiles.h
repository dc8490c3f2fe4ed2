#pragma once

// The AVX-512 fp32 tiles that unpacked_gemm and linear_gelu are made of: a tile of C summed in
// registers over the whole inner dimension, in order, and handed to an epilogue that writes it.
// Included by those kernels' sources only (it pulls in <immintrin.h>); x86-64 only.

#include "models/kernels/vector16.h"

#include <cstdint>

namespace vit::models::fp32_tiles {

// Where A's element (i, l) sits: data[i * row_stride + l * inner_stride].
struct Operand {
  const float* data;
  int64_t row_stride, inner_stride;

  Operand from_row(int64_t row) const { return {data + row * row_stride, row_stride, inner_stride}; }
};

// The sums of rows row .. row + kRows of A[·, k] · B[k, 16 · kVectors] (B's rows ldb apart, the last
// vector's columns masked by `last`), over l = 0 … k − 1 in order, handed to
// out(row + r, v, lanes, sum) for each row r and vector v.
template <int kRows, int kVectors, typename Epilogue>
VIT_AVX512F __attribute__((always_inline)) inline void tile(int64_t k, Operand a, const float* b, int64_t ldb,
                                                            __mmask16 last, int64_t row, const Epilogue& out) {
  const auto lanes = [last](int v) { return v == kVectors - 1 ? last : static_cast<__mmask16>(0xFFFF); };
  __m512 sums[kRows][kVectors];
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < kVectors; ++v) sums[r][v] = _mm512_setzero_ps();
  }
  for (int64_t l = 0; l < k; ++l) {
    __m512 b_row[kVectors];
#pragma GCC unroll 4
    for (int v = 0; v < kVectors; ++v) b_row[v] = _mm512_maskz_loadu_ps(lanes(v), b + l * ldb + 16 * v);
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) {
      const auto element = _mm512_set1_ps(a.data[r * a.row_stride + l * a.inner_stride]);
#pragma GCC unroll 4
      for (int v = 0; v < kVectors; ++v) sums[r][v] = _mm512_fmadd_ps(element, b_row[v], sums[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < kVectors; ++v) out(row + r, v, lanes(v), sums[r][v]);
  }
}

// Rows [begin, end) of one column block: tiles of 6 rows (8 where the block is 3 vectors wide: 24
// sums in registers for blocks of 4 and 3 vectors), then the rows left in tiles of 4, 2 and 1.
template <int kVectors, typename Epilogue>
VIT_AVX512F void column_block(int64_t begin, int64_t end, int64_t k, Operand a, const float* b, int64_t ldb,
                              __mmask16 last, const Epilogue& out) {
  constexpr int kRows = kVectors == 3 ? 8 : 6;
  int64_t i = begin;
  for (; i + kRows <= end; i += kRows) tile<kRows, kVectors>(k, a.from_row(i), b, ldb, last, i, out);
  if (end - i >= 4) {
    tile<4, kVectors>(k, a.from_row(i), b, ldb, last, i, out);
    i += 4;
  }
  if (end - i >= 2) {
    tile<2, kVectors>(k, a.from_row(i), b, ldb, last, i, out);
    i += 2;
  }
  if (end - i >= 1) tile<1, kVectors>(k, a.from_row(i), b, ldb, last, i, out);
}

// column_block for a block `vectors` wide (1 to 4), chosen at run time.
template <typename Epilogue>
VIT_AVX512F void column_block_of(int vectors, int64_t begin, int64_t end, int64_t k, Operand a, const float* b,
                                 int64_t ldb, __mmask16 last, const Epilogue& out) {
  switch (vectors) {
    case 4:
      column_block<4>(begin, end, k, a, b, ldb, last, out);
      break;
    case 3:
      column_block<3>(begin, end, k, a, b, ldb, last, out);
      break;
    case 2:
      column_block<2>(begin, end, k, a, b, ldb, last, out);
      break;
    default:
      column_block<1>(begin, end, k, a, b, ldb, last, out);
      break;
  }
}

VIT_AVX512F inline __m512d pairs_of(__m512 x) { return _mm512_castps_pd(x); }

// 16 rows of 16 floats (row r at source + r · source_stride) into their transpose (row r at
// target + r · target_stride): pairs of elements, then of pairs, then of 128-bit and 256-bit lanes.
VIT_AVX512F inline void transpose_16x16(const float* source, int64_t source_stride, float* target,
                                        int64_t target_stride) {
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

// source [rows, cols] (row stride source_stride) -> target [cols, rows] (row stride target_stride).
VIT_AVX512F inline void transpose(int64_t rows, int64_t cols, const float* source, int64_t source_stride, float* target,
                                  int64_t target_stride) {
  int64_t r = 0;
  for (; r + 16 <= rows; r += 16) {
    int64_t col = 0;
    for (; col + 16 <= cols; col += 16) {
      transpose_16x16(source + r * source_stride + col, source_stride, target + col * target_stride + r, target_stride);
    }
    for (; col < cols; ++col) {
      for (int64_t x = r; x < r + 16; ++x) target[col * target_stride + x] = source[x * source_stride + col];
    }
  }
  for (; r < rows; ++r) {
    for (int64_t col = 0; col < cols; ++col) target[col * target_stride + r] = source[r * source_stride + col];
  }
}

}  // namespace vit::models::fp32_tiles
