#include "models/kernels/unpacked_gemm.h"

#include "models/kernels/fp32_tiles.h"

#include <algorithm>
#include <vector>

namespace vit::models {
#if defined(__x86_64__)

namespace {

using fp32_tiles::Operand;

// Multiply-adds of the products taken: from heads of [128, 64] (1 M) to operands of ~1 MiB (16 M).
constexpr int64_t kMinMultiplyAdds = int64_t{1} << 20;
constexpr int64_t kMaxMultiplyAdds = int64_t{1} << 24;
constexpr int64_t kMaxInner = 1024;

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

// C's elements: alpha · the sum, rounded to bf16 where rounds_to_bf16.
struct Store {
  float* c;
  int64_t ldc;
  float alpha;
  bool rounds_to_bf16;

  VIT_AVX512F __attribute__((always_inline)) void operator()(int64_t row, int v, __mmask16 lanes, __m512 sum) const {
    const auto product = _mm512_mul_ps(_mm512_set1_ps(alpha), sum);
    _mm512_mask_storeu_ps(c + row * ldc + 16 * v, lanes, rounds_to_bf16 ? bf16_rounded(product) : product);
  }
};

// Blocks of 4 vectors (64 columns), or of 3 where 4s would leave a block of 1 (5 and 9 vectors) or
// where two blocks of 3 cover the rest (6).
int vectors_in_next_block(int64_t vectors_left) {
  if (vectors_left < 4) return static_cast<int>(vectors_left);
  return vectors_left == 5 || vectors_left == 6 || vectors_left == 9 ? 3 : 4;
}

VIT_AVX512F void multiply(int64_t m, int64_t n, int64_t k, Operand a, const float* b, int64_t ldb, Store out) {
  int64_t vectors_left = (n + 15) / 16;
  for (int64_t j = 0; vectors_left > 0;) {
    const int vectors = vectors_in_next_block(vectors_left);
    vectors_left -= vectors;
    const int64_t columns = std::min<int64_t>(16 * vectors, n - j);
    const __mmask16 last = vector16::lanes(16 * (vectors - 1), columns);
    fp32_tiles::column_block_of(vectors, 0, m, k, a, b + j, ldb, last,
                                Store{out.c + j, out.ldc, out.alpha, out.rounds_to_bf16});
    j += columns;
  }
}

}  // namespace

bool unpacked_gemm_applies(int64_t m, int64_t n, int64_t k) {
  const int64_t multiply_adds = m * n * k;
  return vector16::avx512f_available() && multiply_adds >= kMinMultiplyAdds && multiply_adds <= kMaxMultiplyAdds &&
         k <= kMaxInner;
}

void unpacked_gemm(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, bool transpose_a,
                   const float* b, int64_t ldb, bool transpose_b, float* c, int64_t ldc, bool rounds_to_bf16) {
  const Operand rows_of_a = transpose_a ? Operand{a, 1, lda} : Operand{a, lda, 1};
  const Store out{c, ldc, alpha, rounds_to_bf16};
  if (!transpose_b) {
    multiply(m, n, k, rows_of_a, b, ldb, out);
    return;
  }
  thread_local std::vector<float> rows_of_b;
  rows_of_b.resize(static_cast<size_t>(k * n));
  fp32_tiles::transpose(n, k, b, ldb, rows_of_b.data(), n);
  multiply(m, n, k, rows_of_a, rows_of_b.data(), n, out);
}

#else

bool unpacked_gemm_applies(int64_t, int64_t, int64_t) { return false; }

void unpacked_gemm(int64_t, int64_t, int64_t, float, const float*, int64_t, bool, const float*, int64_t, bool, float*,
                   int64_t, bool) {}

#endif

}  // namespace vit::models
