#pragma once

// AMX's tile units for bf16 products: their configuration, B's packed layout (from row-major or
// transposed operands) and the 2 × 2 tile kernel that the AMX kernels (amx_attention.cpp,
// amx_linear.cpp) build on. Included by kernel
// sources only: it pulls in <immintrin.h>. Functions marked VIT_AMX may run only where
// amx_tiles_permitted() (amx.h) says so.

#include "models/kernels/vector16.h"

#include <array>
#include <cstdint>

// The tile intrinsics arrived in GCC 11 and clang 12; with older compilers the files that include
// this build their fallbacks.
#if defined(__x86_64__) && \
    ((defined(__clang__) && __clang_major__ >= 12) || (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11))
#define VIT_AMX_KERNELS 1
#endif

#if defined(VIT_AMX_KERNELS)
namespace vit::models::amx_tiles {

#define VIT_AMX __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,amx-tile,amx-bf16")))

using Bits = uint16_t;  // a bf16's bits

constexpr int64_t kTile = 16;   // rows of every tile; fp32 columns of a product's tile
constexpr int64_t kDepth = 32;  // bf16 elements of a row of an A tile: the inner dimension of one tile product

inline int64_t rounded_up(int64_t x, int64_t multiple) { return (x + multiple - 1) / multiple * multiple; }

// GCC's tile intrinsics are inline assembly that names no memory: the barriers keep the compiler
// from moving stores into a packed operand past the tile loads, or reads of a product before its
// tile stores.
inline void memory_barrier() { asm volatile("" ::: "memory"); }

// Tiles 0-3 hold 16 × 16 fp32 sums of C, tiles 4 and 5 16 rows × 32 bf16 of A, tiles 6 and 7 16
// pairs of B's rows × 16 columns (the layout the tile product reads: B's (k, n) at [k / 2][n][k % 2]).
// All are configured as full 16 × 64-byte tiles.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};

constexpr TileConfig full_tiles() {
  TileConfig config;
  for (int tile = 0; tile < 8; ++tile) {
    config.bytes_per_row[tile] = 64;
    config.rows[tile] = kTile;
  }
  return config;
}

// The tile configuration on this thread for a scope: other kernels on the thread (oneDNN's)
// configure their own between ours. The configuration is a constant in memory: GCC's
// _tile_loadconfig tells the compiler it reads 8 bytes of it, and the compiler dropped the stores
// of the rest when it was built on the stack.
class Tiles {
 public:
  VIT_AMX Tiles() {
    static constexpr TileConfig kFullTiles = full_tiles();
    _tile_loadconfig(&kFullTiles);
  }
  VIT_AMX ~Tiles() { _tile_release(); }
  Tiles(const Tiles&) = delete;
  Tiles& operator=(const Tiles&) = delete;
};

// B [depth, cols] as the tile product reads it: per block of 16 columns, depth / 2 rows of 16
// pairs (B[k][n], B[k + 1][n]); depth a multiple of 32, cols of 16.
struct PackedB {
  Bits* data;
  int64_t depth, cols;

  int64_t block_elements() const { return depth * kTile; }
  Bits* pair_row(int64_t block, int64_t pair) const { return data + block * block_elements() + pair * 2 * kTile; }
};

// C's kRows · 16 rows × kColumns · 16 columns = A's rows · B's column blocks from `b`: tile 2r + c sums
// C's block (r, c); A's row blocks go through tiles 4 and 5, B's column blocks through 6 and 7, so
// that each tile loaded feeds two products, as Intel's guide to AMX lays out a 2 × 2 kernel. With
// kAccumulate, the products are added to C's values instead.
template <int kRows, int kColumns, bool kAccumulate = false>
VIT_AMX inline void product_of_blocks(const Bits* a, int64_t lda, const PackedB& b, const Bits* blocks, float* c,
                                      int64_t ldc) {
  if constexpr (kAccumulate) {
    _tile_loadd(0, c, ldc * 4);
    if constexpr (kColumns > 1) _tile_loadd(1, c + kTile, ldc * 4);
    if constexpr (kRows > 1) _tile_loadd(2, c + kTile * ldc, ldc * 4);
    if constexpr (kRows > 1 && kColumns > 1) _tile_loadd(3, c + kTile * ldc + kTile, ldc * 4);
  } else {
    _tile_zero(0);
    if constexpr (kColumns > 1) _tile_zero(1);
    if constexpr (kRows > 1) _tile_zero(2);
    if constexpr (kRows > 1 && kColumns > 1) _tile_zero(3);
  }
  const int64_t stride = b.block_elements();
  for (int64_t k = 0; k < b.depth; k += kDepth) {
    const Bits* const pairs = blocks + k * kTile;  // pair row k / 2
    _tile_loadd(4, a + k, lda * 2);
    _tile_loadd(6, pairs, 64);
    if constexpr (kColumns > 1) _tile_loadd(7, pairs + stride, 64);
    if constexpr (kRows > 1) _tile_loadd(5, a + kTile * lda + k, lda * 2);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (kColumns > 1) _tile_dpbf16ps(1, 4, 7);
    if constexpr (kRows > 1) _tile_dpbf16ps(2, 5, 6);
    if constexpr (kRows > 1 && kColumns > 1) _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, c, ldc * 4);
  if constexpr (kColumns > 1) _tile_stored(1, c + kTile, ldc * 4);
  if constexpr (kRows > 1) _tile_stored(2, c + kTile * ldc, ldc * 4);
  if constexpr (kRows > 1 && kColumns > 1) _tile_stored(3, c + kTile * ldc + kTile, ldc * 4);
}

// B from src [depth, cols] row-major (bf16, ld), zeros beyond: rows 2p and 2p + 1 interleaved.
VIT_AMX inline void pack_pairs(const Bits* src, int64_t ld, int64_t depth, int64_t cols, const PackedB& b) {
  alignas(64) static constexpr std::array<Bits, 32> kInterleaved = [] {
    std::array<Bits, 32> lanes{};
    for (Bits c = 0; c < 16; ++c) {
      lanes[2 * c] = c;
      lanes[2 * c + 1] = static_cast<Bits>(16 + c);
    }
    return lanes;
  }();
  const auto interleaved = _mm512_loadu_si512(kInterleaved.data());
  for (int64_t block = 0; block < b.cols / kTile; ++block) {
    const __mmask16 lanes = vector16::first_lanes(cols - block * kTile);
    for (int64_t pair = 0; pair < b.depth / 2; ++pair) {
      const int64_t row = 2 * pair;
      const auto first = _mm256_maskz_loadu_epi16(row < depth ? lanes : 0, src + row * ld + block * kTile);
      const auto second = _mm256_maskz_loadu_epi16(row + 1 < depth ? lanes : 0, src + (row + 1) * ld + block * kTile);
      const auto both = _mm512_inserti64x4(_mm512_castsi256_si512(first), second, 1);
      _mm512_storeu_si512(b.pair_row(block, pair), _mm512_permutexvar_epi16(interleaved, both));
    }
  }
}

// The 16 × 16 32-bit words of rows[0..15] transposed in place: rows[i] holds what was column i.
VIT_AMX inline void transpose_words(__m512i rows[16]) {
  __m512i pairs[16], quads[16];
  for (int i = 0; i < 16; i += 2) {
    pairs[i] = _mm512_unpacklo_epi32(rows[i], rows[i + 1]);
    pairs[i + 1] = _mm512_unpackhi_epi32(rows[i], rows[i + 1]);
  }
  // quads[4g + c], per 128-bit lane l: column 4l + c of rows 4g .. 4g + 3.
  for (int g = 0; g < 16; g += 4) {
    quads[g] = _mm512_unpacklo_epi64(pairs[g], pairs[g + 2]);
    quads[g + 1] = _mm512_unpackhi_epi64(pairs[g], pairs[g + 2]);
    quads[g + 2] = _mm512_unpacklo_epi64(pairs[g + 1], pairs[g + 3]);
    quads[g + 3] = _mm512_unpackhi_epi64(pairs[g + 1], pairs[g + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    const auto even_lanes_upper = _mm512_shuffle_i32x4(quads[c], quads[4 + c], 0x88);
    const auto odd_lanes_upper = _mm512_shuffle_i32x4(quads[c], quads[4 + c], 0xdd);
    const auto even_lanes_lower = _mm512_shuffle_i32x4(quads[8 + c], quads[12 + c], 0x88);
    const auto odd_lanes_lower = _mm512_shuffle_i32x4(quads[8 + c], quads[12 + c], 0xdd);
    rows[c] = _mm512_shuffle_i32x4(even_lanes_upper, even_lanes_lower, 0x88);
    rows[c + 8] = _mm512_shuffle_i32x4(even_lanes_upper, even_lanes_lower, 0xdd);
    rows[c + 4] = _mm512_shuffle_i32x4(odd_lanes_upper, odd_lanes_lower, 0x88);
    rows[c + 12] = _mm512_shuffle_i32x4(odd_lanes_upper, odd_lanes_lower, 0xdd);
  }
}

// B = src^T from src [cols, depth] row-major (bf16, ld; depth even), zeros beyond: a pair row of B
// is one 32-bit word of each of 16 of src's rows, so 16 rows' next 16 words transposed in registers
// are 16 pair rows.
VIT_AMX inline void pack_transposed(const Bits* src, int64_t ld, int64_t cols, int64_t depth, const PackedB& b) {
  for (int64_t block = 0; block < b.cols / kTile; ++block) {
    for (int64_t pair0 = 0; pair0 < b.depth / 2; pair0 += kTile) {
      const __mmask16 words_in_depth = vector16::first_lanes(depth / 2 - pair0);
      __m512i words[kTile];
      for (int64_t r = 0; r < kTile; ++r) {
        const int64_t row = block * kTile + r;
        words[r] = _mm512_maskz_loadu_epi32(row < cols ? words_in_depth : 0, src + row * ld + 2 * pair0);
      }
      transpose_words(words);
      for (int64_t pair = 0; pair < kTile; ++pair) _mm512_storeu_si512(b.pair_row(block, pair0 + pair), words[pair]);
    }
  }
}

}  // namespace vit::models::amx_tiles
#endif
