#include "models/kernels/amx_linear.h"

#include "models/kernels/amx.h"
#include "models/kernels/amx_tiles.h"
#include "models/kernels/bf16_gelu.h"
#include "models/kernels/optional_input.h"
#include "models/kernels/vector16.h"

#include <ATen/Functions.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <ATen/record_function.h>
#include <c10/core/GradMode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace vit::models {
#if defined(VIT_AMX_KERNELS)
namespace {

using namespace amx_tiles;

constexpr int64_t kPanelRows = 32;                  // rows of C a 2 × 2 tile kernel sums
constexpr int64_t kChunkRows = 256;                 // the operands' rows packed at a time
constexpr int64_t kSumsBytes = int64_t{1} << 20;    // C's fp32 sums kept in L2 (half of a 2 MiB L2) while they grow
constexpr int64_t kPackedBytes = int64_t{1} << 20;  // a packed B's columns kept in L2 while A's rows pass

// at::parallel_for's grain over 32-row panels of `multiply_adds` each: about 2^22 a task, at least one panel.
int64_t panels_per_task(int64_t multiply_adds) {
  return std::max<int64_t>(1, (int64_t{1} << 22) / std::max<int64_t>(multiply_adds, 1));
}

// A [columns, depth] = src^T for src's first `rows` rows × `columns` columns (bf16, ld; columns a
// multiple of 32, depth of 32), zeros beyond its rows: a pair of src's rows interleaved is one
// 32-bit word per column, and 16 such rows transposed are 16 of A's rows' next 32 elements.
VIT_AMX void pack_columns_as_rows(const Bits* src, int64_t ld, int64_t rows, int64_t columns, int64_t depth, Bits* a) {
  for (int64_t pair0 = 0; pair0 < depth / 2; pair0 += kTile) {
    for (int64_t column0 = 0; column0 < columns; column0 += 2 * kTile) {
      // Unpacking within 128-bit lanes: `low` holds columns 8l + 0..3 of lane l, `high` 8l + 4..7.
      __m512i low[16], high[16];
      for (int64_t pair = 0; pair < kTile; ++pair) {
        const int64_t row = 2 * (pair0 + pair);
        const auto first = _mm512_maskz_loadu_epi16(row < rows ? ~0U : 0, src + row * ld + column0);
        const auto second = _mm512_maskz_loadu_epi16(row + 1 < rows ? ~0U : 0, src + (row + 1) * ld + column0);
        low[pair] = _mm512_unpacklo_epi16(first, second);
        high[pair] = _mm512_unpackhi_epi16(first, second);
      }
      transpose_words(low);
      transpose_words(high);
      Bits* const out = a + column0 * depth + 2 * pair0;
      for (int i = 0; i < kTile; ++i) {
        const int64_t column = (i / 4) * 8 + i % 4;
        _mm512_storeu_si512(out + column * depth, low[i]);
        _mm512_storeu_si512(out + (column + 4) * depth, high[i]);
      }
    }
  }
}

// `elements` of a thread's buffer kept across calls (grown, never shrunk), from a 64-byte boundary:
// each packed row's 32 elements are then one cache line.
Bits* aligned_buffer(std::vector<Bits>& buffer, int64_t elements) {
  constexpr int64_t kLine = 64 / sizeof(Bits);
  buffer.resize(std::max(buffer.size(), static_cast<size_t>(elements + kLine)));
  const auto address = reinterpret_cast<uintptr_t>(buffer.data());
  return buffer.data() + (rounded_up(static_cast<int64_t>(address), 64) - static_cast<int64_t>(address)) / 2;
}

// dst[n][i] = sums[i][n] for `rows` × `columns` fp32 sums (multiples of 16; dst's ld): 16 × 16 blocks
// transposed in registers.
VIT_AMX void store_transposed(const float* sums, int64_t rows, int64_t columns, float* dst, int64_t ld) {
  for (int64_t row = 0; row < rows; row += kTile) {
    for (int64_t column = 0; column < columns; column += kTile) {
      __m512i block[kTile];
      for (int64_t r = 0; r < kTile; ++r) block[r] = _mm512_loadu_si512(sums + (row + r) * columns + column);
      transpose_words(block);
      for (int64_t c = 0; c < kTile; ++c) _mm512_storeu_si512(dst + (column + c) * ld + row, block[c]);
    }
  }
}

// Rows [first, last) of P^T Q over `rows` rows of P [rows, M] and Q [rows, N] (bf16, ldp and ldq;
// first, last and N multiples of 32), into C [M, N] or, where `transposed`, into columns [first,
// last) of C^T [N, M] (fp32). C's rows are taken in blocks whose sums stay in L2 across the chunks
// of rows; where there are several blocks (N is wide), every chunk's B is packed once and kept.
VIT_AMX void transposed_product(const Bits* p, int64_t ldp, const Bits* q, int64_t ldq, int64_t rows, int64_t n,
                                int64_t first, int64_t last, bool transposed, float* out) {
  const int64_t block_rows = std::max(kPanelRows, kSumsBytes / (n * 4) / kPanelRows * kPanelRows);
  const bool one_block = block_rows >= last - first;
  const int64_t b_chunks = one_block ? 1 : (rows + kChunkRows - 1) / kChunkRows;
  thread_local std::vector<Bits> a_buffer, b_buffer;
  thread_local std::vector<float> sums_buffer;
  Bits* const packed_a = aligned_buffer(a_buffer, std::min(block_rows, last - first) * kChunkRows);
  Bits* const packed_b = aligned_buffer(b_buffer, b_chunks * n * kChunkRows);
  if (transposed) sums_buffer.resize(std::max(sums_buffer.size(), static_cast<size_t>(block_rows * n)));
  const Tiles tiles;
  for (int64_t begin = first; begin < last; begin += block_rows) {
    const int64_t end = std::min(last, begin + block_rows);
    float* const c = transposed ? sums_buffer.data() : out + begin * n;
    for (int64_t chunk = 0; chunk < rows; chunk += kChunkRows) {
      const int64_t chunk_rows = std::min(kChunkRows, rows - chunk), depth = rounded_up(chunk_rows, kDepth);
      const PackedB b{packed_b + (one_block ? 0 : chunk / kChunkRows * n * kChunkRows), depth, n};
      if (one_block || begin == first) pack_pairs(q + chunk * ldq, ldq, chunk_rows, n, b);
      pack_columns_as_rows(p + chunk * ldp + begin, ldp, chunk_rows, end - begin, depth, packed_a);
      memory_barrier();
      for (int64_t panel = 0; panel < end - begin; panel += kPanelRows) {
        for (int64_t block = 0; block < n / kTile; block += 2) {
          const Bits* const a = packed_a + panel * depth;
          float* const sums = c + panel * n + block * kTile;
          if (chunk == 0) {
            product_of_blocks<2, 2>(a, depth, b, b.pair_row(block, 0), sums, n);
          } else {
            product_of_blocks<2, 2, true>(a, depth, b, b.pair_row(block, 0), sums, n);
          }
        }
      }
      memory_barrier();
    }
    if (transposed) store_transposed(c, end - begin, n, out + begin, ldp);  // P is contiguous: ldp is M
  }
}

// The bias's 16 values from column `column` in fp32, or zeros without a bias.
VIT_AMX inline __m512 bias_from(const Bits* bias, int64_t column) {
  return bias ? vector16::widened(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(bias + column)))
              : _mm512_setzero_ps();
}

// 32 bf16 from two vectors of 16 fp32, each rounded once: `low`'s first.
VIT_AMX inline __m512i bf16_pairs(__m512 low, __m512 high) {
  return reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(high, low));
}

// The epilogues below take a block of rows_times_packed's output: `rows` rows (up to 32) × 32
// columns of fp32 sums (32 floats apart) for the output's rows from `row` and columns from
// `column`, and write it. prefetch(rows, row, column) is told of the block two ahead of each,
// for the epilogues that read more than the sums.

// out = the sums plus a bf16 bias (or none), rounded to bf16 once: what oneDNN computes with the
// bias as its product's sum post-op.
struct RoundedWithBias {
  const Bits* bias;
  Bits* out;
  int64_t ld;

  void prefetch(int64_t, int64_t, int64_t) const {}

  VIT_AMX void operator()(const float* sums, int64_t rows, int64_t row, int64_t column) const {
    const auto bias_low = bias_from(bias, column), bias_high = bias_from(bias, column + kTile);
    memory_barrier();
    for (int64_t i = 0; i < rows; ++i) {
      const auto low = _mm512_add_ps(_mm512_load_ps(sums + i * kPanelRows), bias_low);
      const auto high = _mm512_add_ps(_mm512_load_ps(sums + i * kPanelRows + kTile), bias_high);
      _mm512_storeu_si512(out + (row + i) * ld + column, bf16_pairs(low, high));
    }
  }
};

// 32 values of a table indexed by bf16 bits, for the 32 bf16 in `bits`: the lower 16 and the upper.
struct LookedUp {
  __m512 low, high;
};
VIT_AMX inline LookedUp looked_up(const float* table, __m512i bits) {
  return {_mm512_i32gather_ps(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(bits)), table, 4),
          _mm512_i32gather_ps(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(bits, 1)), table, 4)};
}

// An MLP's hidden layer: h = bf16(sums + bias) with an fp32 bias (the pre-activation, kept for the
// backward where `pre_activation` is not null) and GELU(h) into `activated`, looked up exactly
// (bf16_gelu.h's table).
struct BiasAndGelu {
  const float* bias;
  const float* gelu;
  Bits* pre_activation;
  Bits* activated;
  int64_t ld;

  void prefetch(int64_t, int64_t, int64_t) const {}

  VIT_AMX void operator()(const float* sums, int64_t rows, int64_t row, int64_t column) const {
    const auto bias_low = _mm512_loadu_ps(bias + column), bias_high = _mm512_loadu_ps(bias + column + kTile);
    memory_barrier();
    for (int64_t i = 0; i < rows; ++i) {
      const auto h = bf16_pairs(_mm512_add_ps(_mm512_load_ps(sums + i * kPanelRows), bias_low),
                                _mm512_add_ps(_mm512_load_ps(sums + i * kPanelRows + kTile), bias_high));
      const int64_t at = (row + i) * ld + column;
      if (pre_activation != nullptr) _mm512_storeu_si512(pre_activation + at, h);
      const auto g = looked_up(gelu, h);
      _mm512_storeu_si512(activated + at, bf16_pairs(g.low, g.high));  // already bf16 values: exact
    }
  }
};

// The gradient of an MLP's pre-activation h from the product that is its GELU's output gradient:
// dh = bf16(bf16(sums) · gelu'(h)), the sums rounded as that product alone would return them; and
// where `panel_sums` is not null, dh's fp32 sums over the rows of each 32-row panel of the output
// added into that panel's row of panel_sums (zeros at first): the bias's gradient, summed over the
// panels in order afterwards, so that its bits do not depend on how the panels were shared.
struct GeluGradient {
  const Bits* pre_activation;
  const float* derivative;
  Bits* grad_pre_activation;
  float* panel_sums;
  int64_t ld;

  // h's lines of a block to come: read 32 rows at a time, one line a row, h streams from memory in
  // a pattern the hardware prefetchers do not follow (without this its loads took half of the
  // kernel's time).
  VIT_AMX void prefetch(int64_t rows, int64_t row, int64_t column) const {
    for (int64_t i = 0; i < rows; ++i) {
      _mm_prefetch(reinterpret_cast<const char*>(pre_activation + (row + i) * ld + column), _MM_HINT_T0);
    }
  }

  VIT_AMX void operator()(const float* sums, int64_t rows, int64_t row, int64_t column) const {
    auto sum_low = _mm512_setzero_ps(), sum_high = _mm512_setzero_ps();
    memory_barrier();
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t at = (row + i) * ld + column;
      const auto d = looked_up(derivative, _mm512_loadu_si512(pre_activation + at));
      const auto grad_low = vector16::bf16_rounded(_mm512_load_ps(sums + i * kPanelRows));
      const auto grad_high = vector16::bf16_rounded(_mm512_load_ps(sums + i * kPanelRows + kTile));
      const auto dh = bf16_pairs(_mm512_mul_ps(grad_low, d.low), _mm512_mul_ps(grad_high, d.high));
      _mm512_storeu_si512(grad_pre_activation + at, dh);
      sum_low = _mm512_add_ps(sum_low, vector16::widened(_mm512_castsi512_si256(dh)));
      sum_high = _mm512_add_ps(sum_high, vector16::widened(_mm512_extracti64x4_epi64(dh, 1)));
    }
    if (panel_sums == nullptr) return;
    float* const sums_row = panel_sums + row / kPanelRows * ld + column;
    _mm512_storeu_ps(sums_row, _mm512_add_ps(_mm512_loadu_ps(sums_row), sum_low));
    _mm512_storeu_ps(sums_row + kTile, _mm512_add_ps(_mm512_loadu_ps(sums_row + kTile), sum_high));
  }
};

// Rows [first, last) of A [rows, depth] (bf16, lda) · B, each 32 × 32 block's fp32 sums over the
// whole depth handed to `epilogue` (above) while they are in L1. Rows past the last 16 go through
// a zero-padded copy of A's rows.
//
// Streaming stores, which write the lines without reading them first, made ViT-Ti/16's bf16 step
// 3 % slower than the epilogues' plain stores: the pass after reads the output while part of it is
// still in cache.
template <typename Epilogue>
VIT_AMX void rows_times_packed(const Bits* a, int64_t lda, int64_t first, int64_t last, const PackedB& b,
                               const Epilogue& epilogue) {
  alignas(64) float sums[kPanelRows * kPanelRows];
  thread_local std::vector<Bits> tail_buffer;
  // B's columns in blocks that stay in L2 while every panel of rows passes (ViT-B's fc1 packs 4.5 MiB).
  const int64_t block_columns = std::max(kPanelRows, kPackedBytes / (b.depth * 2) / kPanelRows * kPanelRows);
  const Tiles tiles;
  for (int64_t column0 = 0; column0 < b.cols; column0 += block_columns) {
    const int64_t column_end = std::min(b.cols, column0 + block_columns);
    for (int64_t row = first; row < last;) {
      // 32 rows on the 2 × 2 kernel, then 16 on the 1 × 2, then the rest padded to 16.
      const int64_t rows = last - row >= kPanelRows ? kPanelRows : std::min(last - row, kTile);
      const Bits* rows_of_a = a + row * lda;
      int64_t a_ld = lda;
      if (rows < kTile) {
        Bits* const padded = aligned_buffer(tail_buffer, kTile * b.depth);
        std::fill(padded, padded + kTile * b.depth, Bits{0});
        for (int64_t i = 0; i < rows; ++i) std::copy_n(rows_of_a + i * lda, b.depth, padded + i * b.depth);
        rows_of_a = padded;
        a_ld = b.depth;
        memory_barrier();
      }
      const int64_t next_rows = std::min(kPanelRows, last - row - rows);
      for (int64_t column = column0; column < column_end; column += kPanelRows) {
        // Two blocks ahead: further along these rows, or the next panel's first blocks.
        if (const int64_t ahead = column + 2 * kPanelRows; ahead < column_end) {
          epilogue.prefetch(rows, row, ahead);
        } else if (ahead - column_end + column0 < column_end) {
          epilogue.prefetch(next_rows, row + rows, ahead - column_end + column0);
        }
        if (rows == kPanelRows) {
          product_of_blocks<2, 2>(rows_of_a, a_ld, b, b.pair_row(column / kTile, 0), sums, kPanelRows);
        } else {
          product_of_blocks<1, 2>(rows_of_a, a_ld, b, b.pair_row(column / kTile, 0), sums, kPanelRows);
        }
        epilogue(sums, rows, row, column);
      }
      row += rows;
    }
  }
}

const Bits* bits_of(const at::Tensor& t) { return reinterpret_cast<const Bits*>(t.data_ptr<c10::BFloat16>()); }
Bits* mutable_bits_of(const at::Tensor& t) { return reinterpret_cast<Bits*>(t.data_ptr<c10::BFloat16>()); }

// rows [R, depth] (contiguous) · b [depth, cols] through `epilogue`, b packed by `pack` once, on this
// thread, into a buffer the threads that share the rows' 32-row panels read. Recorded for the
// profiler as an mm's operands (app/runtime/operator_profile.cpp counts its FLOPs).
template <typename Pack, typename Epilogue>
void multiply(const at::Tensor& rows, const at::Tensor& b_matrix, const Pack& pack, const Epilogue& epilogue) {
  RECORD_FUNCTION("vit::amx_linear", std::vector<c10::IValue>({rows, b_matrix}));
  const int64_t depth = rows.size(1), count = rows.size(0), cols = b_matrix.size(1);
  thread_local std::vector<Bits> b_buffer;
  const PackedB b{aligned_buffer(b_buffer, depth * cols), depth, cols};
  pack(b);
  at::parallel_for(0, (count + kPanelRows - 1) / kPanelRows, panels_per_task(kPanelRows * depth * cols),
                   [&](int64_t begin, int64_t end) {
                     rows_times_packed(bits_of(rows), depth, begin * kPanelRows, std::min(count, end * kPanelRows), b,
                                       epilogue);
                   });
}

// B = weight^T for a weight [N, K] (bf16, contiguous): the forward's.
auto transposed(const at::Tensor& weight) {
  return [&weight](const PackedB& b) {
    pack_transposed(bits_of(weight), weight.size(1), weight.size(0), weight.size(1), b);
  };
}

// B = weight [N, K] as it is: the input gradient's.
auto as_it_is(const at::Tensor& weight) {
  return
      [&weight](const PackedB& b) { pack_pairs(bits_of(weight), weight.size(1), weight.size(0), weight.size(1), b); };
}

at::Tensor empty_rows(int64_t rows, int64_t columns, const at::TensorOptions& options) {
  return at::empty({rows, columns}, options.dtype(at::kBFloat16));
}

// input [R, K] · weight [N, K]^T + bias [N] (all bf16): the layer's output.
at::Tensor forward_product(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias) {
  const auto a = input.contiguous(), w = weight.contiguous();
  const auto bias_values = bias.defined() ? bias.contiguous() : bias;
  auto out = empty_rows(a.size(0), w.size(0), a.options());
  multiply(a, w.t(), transposed(w),
           RoundedWithBias{bias.defined() ? bits_of(bias_values) : nullptr, mutable_bits_of(out), w.size(0)});
  return out;
}

// grad_output [R, N] · weight [N, K] (bf16): the input's gradient.
at::Tensor input_gradient(const at::Tensor& grad_output, const at::Tensor& weight) {
  const auto a = grad_output.contiguous(), w = weight.contiguous();
  auto out = empty_rows(a.size(0), w.size(1), a.options());
  multiply(a, w, as_it_is(w), RoundedWithBias{nullptr, mutable_bits_of(out), w.size(1)});
  return out;
}

// The weight's gradient from the node's bf16 operands, in the weight's dtype: fp32 sums rounded to
// bf16 values, what a cast to bf16 and back gives but that subnormals become zeros (the
// instruction's rule).
at::Tensor weight_gradient(const at::Tensor& grad_output, const at::Tensor& input, c10::ScalarType weight_dtype) {
  auto gradient = amx_weight_gradient(grad_output, input);
  auto* sums = gradient.data_ptr<float>();
  vector16::round_to_bf16_values(sums, sums, 0, gradient.numel());
  return gradient.to(weight_dtype);
}

// The weight goes in as the layer holds it (fp32) and is cast to bf16 here, so that its gradient
// leaves in fp32, rounded to bf16 values as autocast's cast node would return it, without the
// copies to bf16 and back that such a node costs (2.5 % of ViT-Ti/16's bf16 step were weight copies).
struct AmxLinear : public torch::autograd::Function<AmxLinear> {
  // input [R, K] bf16, weight [N, K] in fp32 or bf16, bias bf16 [N] or none.
  static at::Tensor forward(torch::autograd::AutogradContext* context, const at::Tensor& input,
                            const at::Tensor& weight, const c10::optional<at::Tensor>& bias) {
    const auto weight_values = weight.to(at::kBFloat16);
    context->save_for_backward({input, weight_values});
    context->saved_data["bias"] = bias.has_value();
    context->saved_data["weight_dtype"] = weight.scalar_type();
    return forward_product(input, weight_values, bias.value_or(at::Tensor()));
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 const torch::autograd::variable_list& output_grads) {
    const auto saved = context->get_saved_variables();
    const auto& input = saved[0];
    const auto& weight_values = saved[1];
    const auto grad = output_grads[0].contiguous();
    at::Tensor grad_input, grad_weight, grad_bias;
    if (context->needs_input_grad(0)) grad_input = input_gradient(grad, weight_values);
    if (context->needs_input_grad(1)) {
      grad_weight = weight_gradient(grad, input, context->saved_data["weight_dtype"].toScalarType());
    }
    if (context->saved_data["bias"].toBool() && context->needs_input_grad(2)) grad_bias = grad.sum(0);
    return {grad_input, grad_weight, grad_bias};
  }
};

// GELU(input [R, K] · fc1_weight [H, K]^T + fc1_bias) (bf16 operands, an fp32 bias) in bf16, and
// the pre-activation where keep_pre_activation (else undefined).
std::pair<at::Tensor, at::Tensor> hidden_layer(const at::Tensor& input, const at::Tensor& fc1_weight,
                                               const at::Tensor& fc1_bias, bool keep_pre_activation) {
  const auto w = fc1_weight.contiguous();
  const auto bias = fc1_bias.to(at::kFloat).contiguous();
  auto activated = empty_rows(input.size(0), w.size(0), input.options());
  const auto pre_activation = keep_pre_activation ? at::empty_like(activated) : at::Tensor();
  multiply(input, w.t(), transposed(w),
           BiasAndGelu{bias.data_ptr<float>(), gelu_of_bf16_table(),
                       keep_pre_activation ? mutable_bits_of(pre_activation) : nullptr, mutable_bits_of(activated),
                       w.size(0)});
  return {pre_activation, activated};
}

// An MLP's two layers and the GELU between them (amx_mlp); the weights cast inside, as AmxLinear's.
struct AmxMlp : public torch::autograd::Function<AmxMlp> {
  // input [R, K] bf16 (contiguous), fc1_weight [H, K] and fc2_weight [N, H] in fp32 or bf16,
  // fc1_bias fp32 [H], fc2_bias bf16 [N] or none.
  static at::Tensor forward(torch::autograd::AutogradContext* context, const at::Tensor& input,
                            const at::Tensor& fc1_weight, const at::Tensor& fc1_bias, const at::Tensor& fc2_weight,
                            const c10::optional<at::Tensor>& fc2_bias) {
    const auto fc1_values = fc1_weight.to(at::kBFloat16), fc2_values = fc2_weight.to(at::kBFloat16);
    const auto [pre_activation, activated] = hidden_layer(input, fc1_values, fc1_bias, true);
    context->save_for_backward({input, fc1_values, pre_activation, activated, fc2_values});
    context->saved_data["fc1_dtype"] = fc1_weight.scalar_type();
    context->saved_data["fc2_dtype"] = fc2_weight.scalar_type();
    context->saved_data["fc2_bias"] = fc2_bias.has_value();
    return forward_product(activated, fc2_values, fc2_bias.value_or(at::Tensor()));
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 const torch::autograd::variable_list& output_grads) {
    const auto saved = context->get_saved_variables();
    const auto &input = saved[0], &fc1_values = saved[1], &pre_activation = saved[2], &activated = saved[3],
               &fc2_values = saved[4];
    const auto grad = output_grads[0].contiguous();
    const int64_t rows = grad.size(0), hidden = fc1_values.size(0);
    // fc2's input gradient, through GELU's derivative as it is written, with the bias's row sums.
    const bool fc1_bias_grad = context->needs_input_grad(2);
    const auto panel_sums =
        fc1_bias_grad ? at::zeros({(rows + kPanelRows - 1) / kPanelRows, hidden}, grad.options().dtype(at::kFloat))
                      : at::Tensor();
    auto grad_pre_activation = at::empty_like(pre_activation);
    multiply(
        grad, fc2_values, as_it_is(fc2_values),
        GeluGradient{bits_of(pre_activation), gelu_derivative_of_bf16_table(), mutable_bits_of(grad_pre_activation),
                     fc1_bias_grad ? panel_sums.data_ptr<float>() : nullptr, hidden});
    at::Tensor grad_input, grad_fc1_weight, grad_fc1_bias, grad_fc2_weight, grad_fc2_bias;
    if (context->needs_input_grad(0)) grad_input = input_gradient(grad_pre_activation, fc1_values);
    if (context->needs_input_grad(1)) {
      grad_fc1_weight = weight_gradient(grad_pre_activation, input, context->saved_data["fc1_dtype"].toScalarType());
    }
    if (fc1_bias_grad) {
      grad_fc1_bias = at::zeros({hidden}, panel_sums.options());
      const float* sums = panel_sums.data_ptr<float>();
      float* total = grad_fc1_bias.data_ptr<float>();
      for (int64_t panel = 0; panel < panel_sums.size(0); ++panel) {
        for (int64_t j = 0; j < hidden; ++j) total[j] += sums[panel * hidden + j];
      }
    }
    if (context->needs_input_grad(3)) {
      grad_fc2_weight = weight_gradient(grad, activated, context->saved_data["fc2_dtype"].toScalarType());
    }
    if (context->saved_data["fc2_bias"].toBool() && context->needs_input_grad(4)) grad_fc2_bias = grad.sum(0);
    return {grad_input, grad_fc1_weight, grad_fc1_bias, grad_fc2_weight, grad_fc2_bias};
  }
};

// Autocast's cast to bf16 (cached per autocast region), of a tensor or of none.
at::Tensor autocast_bf16(const at::Tensor& t) {
  return t.defined() ? at::autocast::cached_cast(at::kBFloat16, t, c10::DeviceType::CPU) : t;
}

// product(rows) of the input's rows as a matrix [R, K], viewed back as [..., out_features].
template <typename Product>
at::Tensor on_rows(const at::Tensor& input, int64_t out_features, const Product& product) {
  if (input.dim() == 2) return product(input);
  auto sizes = input.sizes().vec();
  sizes.back() = out_features;
  return product(input.flatten(0, -2)).view(sizes);
}

bool records_gradient(std::initializer_list<at::Tensor> tensors) {
  return c10::GradMode::is_enabled() && std::any_of(tensors.begin(), tensors.end(), [](const at::Tensor& t) {
           return t.defined() && t.requires_grad();
         });
}

}  // namespace

bool amx_linear_applies(const at::Tensor& input, const at::Tensor& weight) {
  return input.device().is_cpu() && weight.dim() == 2 && weight.size(0) > 0 && weight.size(1) > 0 &&
         weight.size(0) % kPanelRows == 0 && weight.size(1) % kPanelRows == 0 && amx_tiles_permitted();
}

at::Tensor amx_linear(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias) {
  TORCH_CHECK(amx_linear_applies(input, weight) && input.size(-1) == weight.size(1),
              "amx_linear: an input [..., K] on a CPU with AMX and a weight [N, K] with N and K multiples of 32");
  // The casts autocast makes for its linear (the weight's inside the node), then none inside.
  const auto values = autocast_bf16(input);
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  const bool recorded = records_gradient({input, weight, bias});
  return on_rows(values, weight.size(0), [&](const at::Tensor& rows) {
    // Without a backward to follow, the forward's product alone, on autocast's cached cast of the weight.
    if (!recorded) return forward_product(rows, autocast_bf16(weight), autocast_bf16(bias));
    return AmxLinear::apply(rows, weight, optional_input(autocast_bf16(bias)));
  });
}

bool amx_mlp_applies(const at::Tensor& input, const at::Tensor& fc1_weight, const at::Tensor& fc2_weight) {
  return amx_linear_applies(input, fc1_weight) && amx_linear_applies(input, fc2_weight) &&
         fc2_weight.size(1) == fc1_weight.size(0);
}

at::Tensor amx_mlp(const at::Tensor& input, const at::Tensor& fc1_weight, const at::Tensor& fc1_bias,
                   const at::Tensor& fc2_weight, const at::Tensor& fc2_bias) {
  TORCH_CHECK(amx_mlp_applies(input, fc1_weight, fc2_weight) && input.size(-1) == fc1_weight.size(1) &&
                  fc1_bias.defined() && fc1_bias.dim() == 1 && fc1_bias.size(0) == fc1_weight.size(0),
              "amx_mlp: an input [..., K] on a CPU with AMX, weights [H, K] and [N, H] with K, H and N multiples of "
              "32, and a bias [H] for the first");
  const auto values = autocast_bf16(input);
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  const bool recorded = records_gradient({input, fc1_weight, fc1_bias, fc2_weight, fc2_bias});
  return on_rows(values, fc2_weight.size(0), [&](const at::Tensor& matrix) {
    const auto rows = matrix.contiguous();
    if (recorded) {
      return AmxMlp::apply(rows, fc1_weight, fc1_bias, fc2_weight, optional_input(autocast_bf16(fc2_bias)));
    }
    const auto activated = hidden_layer(rows, autocast_bf16(fc1_weight), fc1_bias, false).second;
    return forward_product(activated, autocast_bf16(fc2_weight), autocast_bf16(fc2_bias));
  });
}

at::Tensor amx_weight_gradient(const at::Tensor& grad_output, const at::Tensor& input) {
  TORCH_CHECK(grad_output.dim() == 2 && input.dim() == 2 && grad_output.size(0) == input.size(0) &&
                  grad_output.scalar_type() == at::kBFloat16 && input.scalar_type() == at::kBFloat16 &&
                  grad_output.size(1) % kPanelRows == 0 && input.size(1) % kPanelRows == 0 && input.device().is_cpu() &&
                  grad_output.device().is_cpu() && amx_tiles_permitted(),
              "amx_weight_gradient: bf16 [R, N] and [R, K] on a CPU with AMX, N and K multiples of 32");
  RECORD_FUNCTION("vit::amx_linear", std::vector<c10::IValue>({grad_output.t(), input}));
  const auto g = grad_output.contiguous(), x = input.contiguous();
  // The narrower operand is B, read again for every 32 rows of C, from L2; the wider is
  // transposed into A's rows, each read once. Where that is the input, the sums are the gradient's
  // transpose, transposed back as they are written.
  const bool transposed = x.size(1) > g.size(1);
  const auto& p = transposed ? x : g;
  const auto& q = transposed ? g : x;
  const int64_t m = p.size(1), n = q.size(1);
  // No rows, no chunk: the sums are zeros.
  if (g.size(0) == 0) return at::zeros({g.size(1), x.size(1)}, g.options().dtype(at::kFloat));
  auto gradient = at::empty({g.size(1), x.size(1)}, g.options().dtype(at::kFloat));
  auto* out = gradient.data_ptr<float>();
  at::parallel_for(0, m / kPanelRows, panels_per_task(kPanelRows * n * g.size(0)), [&](int64_t begin, int64_t end) {
    transposed_product(bits_of(p), m, bits_of(q), n, g.size(0), n, begin * kPanelRows, end * kPanelRows, transposed,
                       out);
  });
  return gradient;
}

#else

bool amx_linear_applies(const at::Tensor&, const at::Tensor&) { return false; }

at::Tensor amx_linear(const at::Tensor&, const at::Tensor&, const at::Tensor&) {
  TORCH_CHECK(false, "amx_linear: built without the AMX kernels (an x86-64 feature, GCC 11 or clang 12)");
}

bool amx_mlp_applies(const at::Tensor&, const at::Tensor&, const at::Tensor&) { return false; }

at::Tensor amx_mlp(const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&) {
  TORCH_CHECK(false, "amx_mlp: built without the AMX kernels (an x86-64 feature, GCC 11 or clang 12)");
}

at::Tensor amx_weight_gradient(const at::Tensor&, const at::Tensor&) {
  TORCH_CHECK(false, "amx_weight_gradient: built without the AMX kernels (an x86-64 feature, GCC 11 or clang 12)");
}

#endif
}  // namespace vit::models
