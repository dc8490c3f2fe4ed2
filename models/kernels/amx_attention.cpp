#include "models/kernels/amx_attention.h"

#include "models/kernels/amx.h"
#include "models/kernels/amx_tiles.h"
#include "models/kernels/head_layout.h"
#include "models/kernels/softmax.h"
#include "models/kernels/vector16.h"

#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace vit::models {
#if defined(VIT_AMX_KERNELS)
namespace {

using namespace amx_tiles;
using vector16::bf16_bits;
using vector16::first_lanes;

constexpr int64_t kBlockRows = 32;  // rows of scores or of a product's output handled at a time, in L1

// C[rows, b.cols] (fp32, ldc) = A[rows, b.depth] (bf16 row-major, lda) · B; rows a multiple of 16.
VIT_AMX void tile_product(const Bits* a, int64_t lda, const PackedB& b, int64_t rows, float* c, int64_t ldc) {
  memory_barrier();
  const int64_t blocks = b.cols / kTile;
  for (int64_t i = 0; i < rows; i += 2 * kTile) {
    const Bits* const a_rows = a + i * lda;
    float* const c_rows = c + i * ldc;
    const bool two_rows = rows - i > kTile;
    for (int64_t j = 0; j < blocks; j += 2) {
      const bool two_columns = blocks - j > 1;
      const Bits* const b_blocks = b.pair_row(j, 0);
      float* const c_block = c_rows + j * kTile;
      if (two_rows && two_columns) {
        product_of_blocks<2, 2>(a_rows, lda, b, b_blocks, c_block, ldc);
      } else if (two_rows) {
        product_of_blocks<2, 1>(a_rows, lda, b, b_blocks, c_block, ldc);
      } else if (two_columns) {
        product_of_blocks<1, 2>(a_rows, lda, b, b_blocks, c_block, ldc);
      } else {
        product_of_blocks<1, 1>(a_rows, lda, b, b_blocks, c_block, ldc);
      }
    }
  }
  memory_barrier();
}

inline __mmask32 first32(int64_t n) { return n >= 32 ? 0xFFFFFFFFU : n <= 0 ? 0 : (1U << n) - 1; }

// A [rows_padded, cols_padded] row-major from src's rows × cols (bf16, ld), zeros around them;
// cols_padded a multiple of 32.
VIT_AMX void pack_rows(const Bits* src, int64_t ld, int64_t rows, int64_t cols, Bits* a, int64_t rows_padded,
                       int64_t cols_padded) {
  for (int64_t r = 0; r < rows_padded; ++r) {
    for (int64_t c = 0; c < cols_padded; c += kDepth) {
      const __mmask32 lanes = r < rows ? first32(cols - c) : 0;
      _mm512_storeu_si512(a + r * cols_padded + c, _mm512_maskz_loadu_epi16(lanes, src + r * ld + c));
    }
  }
}

// dst[c][r] = bf16(w[r][c]) for a block's 16 rows r (zeros for r >= rows) and c < cols (a multiple
// of 16): 16 × 16 blocks transposed in registers.
VIT_AMX void store_block_transposed(const float* w, int64_t ldw, int64_t rows, int64_t cols, Bits* dst,
                                    int64_t ld_dst) {
  for (int64_t column0 = 0; column0 < cols; column0 += kTile) {
    __m512i block[kTile];
    for (int64_t r = 0; r < kTile; ++r) {
      block[r] = r < rows ? _mm512_loadu_si512(w + r * ldw + column0) : _mm512_setzero_si512();
    }
    transpose_words(block);
    for (int64_t c = 0; c < kTile; ++c) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + (column0 + c) * ld_dst),
                          bf16_bits(_mm512_castsi512_ps(block[c])));
    }
  }
}

// dst's rows × cols (bf16, ld) = C's, rounded; nothing else of dst is written.
VIT_AMX void write_rows(const float* c, int64_t ldc, int64_t rows, int64_t cols, Bits* dst, int64_t ld) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t col = 0; col < cols; col += kTile) {
      const __mmask16 lanes = first_lanes(cols - col);
      _mm256_mask_storeu_epi16(dst + r * ld + col, lanes, bf16_bits(_mm512_maskz_loadu_ps(lanes, c + r * ldc + col)));
    }
  }
}

// dst's first `rows` rows × cols (bf16, ld) = A[rows rounded up to 16, b.depth] · B, rounded: 32 rows
// at a time, each block written while its sums are in L1.
VIT_AMX void product_into_rows(const Bits* a, int64_t lda, const PackedB& b, int64_t rows, int64_t cols, float* c,
                               Bits* dst, int64_t ld) {
  for (int64_t first = 0; first < rows; first += kBlockRows) {
    const int64_t block = std::min(kBlockRows, rows - first);
    tile_product(a + first * lda, lda, b, rounded_up(block, kTile), c, b.cols);
    write_rows(c, b.cols, block, cols, dst + first * ld, ld);
  }
}

// The padded sizes of a head: R rows (tokens to 16), K inner (tokens to 32), its dims as an inner
// dimension (to 32) and as columns (to 16).
struct Padded {
  int64_t rows, inner, dim_inner, dim_cols;

  explicit Padded(const HeadLayout& l)
      : rows(rounded_up(l.tokens, kTile)),
        inner(rounded_up(l.tokens, kDepth)),
        dim_inner(rounded_up(l.head_dim, kDepth)),
        dim_cols(rounded_up(l.head_dim, kTile)) {}
};

// One thread's buffers for its heads: packed operands, a block of 32 score rows before and after
// the softmax (or its gradient), a block of a product's output, and where asked for a head's bf16
// score rows and columns (the backward's dS and dS^T; P where the forward keeps no weights).
struct Workspace {
  std::vector<Bits> a, b, scores_rows, scores_columns;
  std::vector<float> scores, weights, c;

  Workspace(const Padded& p, bool with_rows, bool with_columns)
      : a(static_cast<size_t>(p.rows * p.dim_inner)),
        b(static_cast<size_t>(std::max(p.dim_inner * p.rows, p.inner * p.dim_cols))),
        scores_rows(with_rows ? static_cast<size_t>(p.rows * p.inner) : 0),
        scores_columns(with_columns ? static_cast<size_t>(p.rows * p.inner) : 0),
        scores(static_cast<size_t>(kBlockRows * p.rows)),
        weights(static_cast<size_t>(kBlockRows * p.rows)),
        c(static_cast<size_t>(kBlockRows * p.dim_cols)) {}
};

// A head's score rows, 32 at a time while they are in L1: the block of S = A · B (A [p.rows,
// p.dim_inner], B [p.dim_inner, p.rows]), each of its rows that is a token's through
// row(r, scores, weights, rounded), which writes the row's weights in fp32 and rounded to bf16 into
// rows_out's row r, and the block's weights transposed into columns_out unless it is null
// ([p.rows, p.inner] each, zeros beyond the tokens).
template <typename Row>
VIT_AMX void score_blocks(const Bits* a, const PackedB& b, int64_t tokens, const Padded& p, Workspace& w,
                          Bits* rows_out, Bits* columns_out, const Row& row) {
  for (int64_t first = 0; first < p.rows; first += kBlockRows) {
    const int64_t block = std::min(kBlockRows, p.rows - first);
    tile_product(a + first * p.dim_inner, p.dim_inner, b, block, w.scores.data(), p.rows);
    const int64_t valid = std::clamp<int64_t>(tokens - first, 0, block);
    for (int64_t r = 0; r < valid; ++r) {
      row(first + r, w.scores.data() + r * p.rows, w.weights.data() + r * p.rows, rows_out + (first + r) * p.inner);
    }
    std::fill(rows_out + (first + valid) * p.inner, rows_out + (first + block) * p.inner, 0);
    if (columns_out == nullptr) continue;
    // The transpose reads the rows' padding columns too: zeros there.
    for (int64_t r = 0; r < valid; ++r)
      std::fill(w.weights.data() + r * p.rows + tokens, w.weights.data() + (r + 1) * p.rows, 0.0F);
    for (int64_t sub = 0; sub < block; sub += kTile) {
      store_block_transposed(w.weights.data() + sub * p.rows, p.rows, valid - sub, p.rows, columns_out + first + sub,
                             p.inner);
    }
  }
  if (columns_out == nullptr) return;
  for (int64_t c = 0; c < p.rows; ++c)
    std::fill(columns_out + c * p.inner + p.rows, columns_out + (c + 1) * p.inner, 0);
}

// head(pair, workspace) for every head, the heads divided among the intra-op threads.
template <typename Head>
void for_each_head(const HeadLayout& l, const Padded& p, bool with_rows, bool with_columns, const Head& head) {
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, l.score_multiply_adds()));
  at::parallel_for(0, l.pairs(), grain, [&](int64_t begin, int64_t end) {
    Workspace workspace(p, with_rows, with_columns);
    const Tiles tiles;
    for (int64_t pair = begin; pair < end; ++pair) head(pair, workspace);
  });
}

const Bits* bits_of(const at::Tensor& t) { return reinterpret_cast<const Bits*>(t.data_ptr<c10::BFloat16>()); }
Bits* mutable_bits_of(const at::Tensor& t) { return reinterpret_cast<Bits*>(t.data_ptr<c10::BFloat16>()); }

}  // namespace

bool amx_attention_applies(int64_t head_dim) {
  return head_dim % 2 == 0 && softmax_row_kernels_available() && amx_tiles_permitted();
}

std::pair<at::Tensor, AmxAttentionWeights> amx_attention_forward(const at::Tensor& qkv, int64_t num_heads, double scale,
                                                                 const at::Tensor& bias, bool keep_weights) {
  const auto l = layout_of(qkv, num_heads);
  TORCH_CHECK(qkv.scalar_type() == at::kBFloat16 && qkv.is_contiguous() && amx_attention_applies(l.head_dim),
              "amx_attention_forward: a contiguous bf16 qkv on a CPU with AMX, heads of even size");
  TORCH_CHECK(!bias.defined() || (bias.scalar_type() == at::kFloat && bias.is_contiguous() && bias.dim() == 4 &&
                                  bias.size(0) > 0 && l.batch % bias.size(0) == 0 && bias.size(1) == num_heads &&
                                  bias.size(2) == l.tokens && bias.size(3) == l.tokens),
              "amx_attention_forward: the bias must be contiguous fp32 [G, heads, N, N] with G dividing the batch");
  const Padded p(l);
  const int64_t n = l.tokens, d = l.head_dim, row_stride = 3 * l.dim();
  auto out = at::empty({l.batch, n, l.dim()}, qkv.options());
  AmxAttentionWeights saved;
  if (keep_weights) {
    saved = {at::empty({l.pairs(), p.rows, p.inner}, qkv.options()),
             at::empty({l.pairs(), p.rows, p.inner}, qkv.options())};
  }
  const Bits* const x = bits_of(qkv);
  Bits* const o = mutable_bits_of(out);
  const float* const bias_values = bias.defined() ? bias.data_ptr<float>() : nullptr;
  const int64_t groups = bias.defined() ? bias.size(0) : 1;
  const auto s = static_cast<float>(scale);
  for_each_head(l, p, !keep_weights, false, [&](int64_t pair, Workspace& w) {
    // S = Q K^T, a block of rows at a time
    pack_rows(x + l.qkv_offset(pair, kQ), row_stride, n, d, w.a.data(), p.rows, p.dim_inner);
    const PackedB keys{w.b.data(), p.dim_inner, p.rows};
    pack_transposed(x + l.qkv_offset(pair, kK), row_stride, n, d, keys);
    // P = softmax(scale · S + bias) in fp32, rounded to bf16 as it is stored (both ways where kept).
    const float* const head_bias =
        bias_values == nullptr ? nullptr
                               : bias_values + ((l.batch_of(pair) % groups) * l.heads + l.head_of(pair)) * n * n;
    Bits* const weights =
        keep_weights ? mutable_bits_of(saved.weights) + pair * p.rows * p.inner : w.scores_rows.data();
    Bits* const transposed = keep_weights ? mutable_bits_of(saved.transposed) + pair * p.rows * p.inner : nullptr;
    score_blocks(w.a.data(), keys, n, p, w, weights, transposed,
                 [&](int64_t r, const float* scores, float* weights_row, Bits* rounded) {
                   scaled_softmax_row(scores, head_bias == nullptr ? nullptr : head_bias + r * n, weights_row,
                                      reinterpret_cast<c10::BFloat16*>(rounded), n, p.inner, s);
                 });
    // O = P V
    const PackedB values{w.b.data(), p.inner, p.dim_cols};
    pack_pairs(x + l.qkv_offset(pair, kV), row_stride, n, d, values);
    product_into_rows(weights, p.inner, values, n, d, w.c.data(), o + l.merged_offset(pair), l.dim());
  });
  return {out, saved};
}

std::pair<at::Tensor, at::Tensor> amx_attention_backward(const at::Tensor& grad_out, const at::Tensor& qkv,
                                                         const AmxAttentionWeights& saved, int64_t num_heads,
                                                         double scale, bool score_gradient) {
  const auto l = layout_of(qkv, num_heads);
  TORCH_CHECK(grad_out.scalar_type() == at::kBFloat16 && grad_out.is_contiguous() &&
                  grad_out.sizes() == at::IntArrayRef({l.batch, l.tokens, l.dim()}),
              "amx_attention_backward: the output's gradient must be contiguous bf16 [B, N, D]");
  const Padded p(l);
  const auto kept = [&](const at::Tensor& t) {
    return t.scalar_type() == at::kBFloat16 && t.is_contiguous() &&
           t.sizes() == at::IntArrayRef({l.pairs(), p.rows, p.inner});
  };
  TORCH_CHECK(
      qkv.scalar_type() == at::kBFloat16 && qkv.is_contiguous() && kept(saved.weights) && kept(saved.transposed),
      "amx_attention_backward: qkv and the weights must be those amx_attention_forward took and kept");
  const int64_t n = l.tokens, d = l.head_dim, row_stride = 3 * l.dim();
  auto grad_qkv = at::empty_like(qkv);
  at::Tensor grad_scores;
  if (score_gradient) grad_scores = at::empty({l.pairs(), n, n}, qkv.options().dtype(at::kFloat));
  const Bits* const x = bits_of(qkv);
  const Bits* const g = bits_of(grad_out);
  Bits* const gx = mutable_bits_of(grad_qkv);
  float* const gs = score_gradient ? grad_scores.data_ptr<float>() : nullptr;
  const auto s = static_cast<float>(scale);
  for_each_head(l, p, true, true, [&](int64_t pair, Workspace& w) {
    const Bits* const weights = bits_of(saved.weights) + pair * p.rows * p.inner;
    // dP = dO V^T, a block of rows at a time
    pack_rows(g + l.merged_offset(pair), l.dim(), n, d, w.a.data(), p.rows, p.dim_inner);
    const PackedB values_transposed{w.b.data(), p.dim_inner, p.rows};
    pack_transposed(x + l.qkv_offset(pair, kV), row_stride, n, d, values_transposed);
    // dS = scale · P ⊙ (dP − Σ dP ⊙ P) in fp32, rounded to bf16 as it is stored both ways.
    score_blocks(w.a.data(), values_transposed, n, p, w, w.scores_rows.data(), w.scores_columns.data(),
                 [&](int64_t r, const float* grad_weights, float* grad_scores_row, Bits* rounded) {
                   scaled_softmax_backward_row(
                       grad_weights, reinterpret_cast<const c10::BFloat16*>(weights + r * p.inner), grad_scores_row,
                       reinterpret_cast<c10::BFloat16*>(rounded), n, p.inner, s);
                   if (gs != nullptr) std::memcpy(gs + (pair * n + r) * n, grad_scores_row, n * sizeof(float));
                 });
    // dQ = dS K, dK = dS^T Q, dV = P^T dO
    const PackedB b{w.b.data(), p.inner, p.dim_cols};
    const auto multiply = [&](const Bits* a, const Bits* src, int64_t src_stride, Bits* dst) {
      pack_pairs(src, src_stride, n, d, b);
      product_into_rows(a, p.inner, b, n, d, w.c.data(), dst, row_stride);
    };
    multiply(w.scores_rows.data(), x + l.qkv_offset(pair, kK), row_stride, gx + l.qkv_offset(pair, kQ));
    multiply(w.scores_columns.data(), x + l.qkv_offset(pair, kQ), row_stride, gx + l.qkv_offset(pair, kK));
    multiply(bits_of(saved.transposed) + pair * p.rows * p.inner, g + l.merged_offset(pair), l.dim(),
             gx + l.qkv_offset(pair, kV));
  });
  return {grad_qkv, grad_scores};
}

#else

bool amx_attention_applies(int64_t) { return false; }

std::pair<at::Tensor, AmxAttentionWeights> amx_attention_forward(const at::Tensor&, int64_t, double, const at::Tensor&,
                                                                 bool) {
  TORCH_CHECK(false, "amx_attention_forward: built without the AMX kernels (an x86-64 feature, GCC 11 or clang 12)");
}

std::pair<at::Tensor, at::Tensor> amx_attention_backward(const at::Tensor&, const at::Tensor&,
                                                         const AmxAttentionWeights&, int64_t, double, bool) {
  TORCH_CHECK(false, "amx_attention_backward: built without the AMX kernels (an x86-64 feature, GCC 11 or clang 12)");
}

#endif
}  // namespace vit::models
