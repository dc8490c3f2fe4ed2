#include "models/kernels/fused_attention.h"

#include "models/kernels/amx_attention.h"
#include "models/kernels/bf16_products.h"
#include "models/kernels/blas.h"
#include "models/kernels/head_layout.h"
#include "models/kernels/optional_input.h"
#include "models/kernels/softmax.h"
#include "models/kernels/unpacked_gemm.h"

#include <ATen/core/grad_mode.h>
#include <ATen/ops/bmm.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <c10/util/accumulate.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/jit/frontend/tracer.h>

#include <climits>

namespace vit::models {
namespace {

void save_bias_shape(torch::autograd::AutogradContext* context, const at::Tensor& bias) {
  if (bias.defined()) context->saved_data["bias_sizes"] = bias.sizes();
}

// The gradients of the node's inputs (qkv, the bias, num_heads, scale). The bias's, where there is
// one, is the scores' gradient summed in fp32 over the sequences that took each bias, from
// grad_scores = `scale` · d(logits).
torch::autograd::variable_list input_gradients(torch::autograd::AutogradContext* context, const at::Tensor& grad_qkv,
                                               const at::Tensor& grad_scores, double scale) {
  at::Tensor grad_bias;
  const auto sizes = context->saved_data.find("bias_sizes");
  if (sizes != context->saved_data.end() && context->needs_input_grad(1)) {
    const auto shape = sizes->second.toIntVector();
    grad_bias = grad_scores.view({-1, c10::multiply_integers(shape)}).sum(0, false, at::kFloat);
    if (scale != 1.0) grad_bias.mul_(1.0 / scale);
    grad_bias = grad_bias.view(shape);
  }
  return {grad_qkv, grad_bias, at::Tensor(), at::Tensor()};
}

// An attention node's entry, the bias an optional input. Node::attend does the work.
template <typename Node>
struct AttentionNode : public torch::autograd::Function<Node> {
  static at::Tensor run(const at::Tensor& qkv, const at::Tensor& bias, int64_t num_heads, double scale) {
    return Node::apply(qkv, optional_input(bias), num_heads, scale);
  }
  static at::Tensor forward(torch::autograd::AutogradContext* context, const at::Tensor& qkv,
                            const c10::optional<at::Tensor>& bias, int64_t num_heads, double scale) {
    return Node::attend(context, qkv, bias.value_or(at::Tensor()), num_heads, scale);
  }
};

// The products of a head that give the output (forward) and q, k and v's gradients (backward):
// [tokens, head_dim] each, over tokens. Between bf16 products on the fp32 kernels they are rounded
// to bf16, by unpacked_gemm as it writes them where it takes the head, else in a pass after.
struct RoundedProducts {
  bool rounds;
  bool in_the_products;

  RoundedProducts(bool bf16_values, const HeadLayout& l)
      : rounds(bf16_values), in_the_products(bf16_values && unpacked_gemm_applies(l.tokens, l.head_dim, l.tokens)) {}

  void gemm(int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda, bool transpose_a, const float* b,
            int64_t ldb, bool transpose_b, float* c, int64_t ldc) const {
    if (in_the_products) {
      unpacked_gemm(m, n, k, alpha, a, lda, transpose_a, b, ldb, transpose_b, c, ldc, true);
    } else {
      blas::gemm(m, n, k, alpha, a, lda, transpose_a, b, ldb, transpose_b, c, ldc);
    }
  }
  at::Tensor finished(const at::Tensor& written) const {
    return rounds && !in_the_products ? bf16_values(written) : written;
  }
};

// kBf16Values: attention between bf16 products on the fp32 kernels, as autocast computes it: qkv
// (an fp32 product) rounded to bf16, the output rounded to bf16, and the gradients rounded where
// autocast's casts round them (the output's, on the way in; q, k and v's), all in fp32. There the
// qkv projection may leave its bias to the node (`qkv_bias`, optional): added to its fp32 product
// in the pass that rounds it, which then rounds the sum once, as the product with the bias would
// be rounded; its gradient is q, k and v's rounded gradient summed over the rows, as the product's
// backward would sum it.
template <bool kBf16Values>
struct FusedAttention : public torch::autograd::Function<FusedAttention<kBf16Values>> {
  static at::Tensor run(const at::Tensor& qkv, const at::Tensor& bias, const at::Tensor& qkv_bias, int64_t num_heads,
                        double scale) {
    return FusedAttention::apply(qkv, optional_input(bias), optional_input(qkv_bias), num_heads, scale);
  }

  static at::Tensor forward(torch::autograd::AutogradContext* context, const at::Tensor& qkv_in,
                            const c10::optional<at::Tensor>& optional_bias, const c10::optional<at::Tensor>& qkv_bias,
                            int64_t num_heads, double scale) {
    TORCH_INTERNAL_ASSERT(kBf16Values || !qkv_bias.has_value(),
                          "fused_attention: qkv's bias between bf16 products only");
    const auto bias = optional_bias.value_or(at::Tensor());
    const auto qkv = !kBf16Values ? qkv_in : qkv_bias ? bf16_values_of_sum(qkv_in, *qkv_bias) : bf16_values(qkv_in);
    const auto l = layout_of(qkv, num_heads);
    const RoundedProducts output(kBf16Values, l);
    const auto n = l.tokens, d = l.head_dim;
    const float* const x = qkv.data_ptr<float>();
    auto scores = at::empty({l.batch, l.heads, n, n}, qkv.options());
    float* const s = scores.data_ptr<float>();
    blas::for_each_product(l.pairs(), l.score_multiply_adds(), [&](int64_t pair) {
      blas::gemm(n, n, d, static_cast<float>(scale), x + l.qkv_offset(pair, kQ), 3 * l.dim(), false,
                 x + l.qkv_offset(pair, kK), 3 * l.dim(), true, s + l.scores_offset(pair), n);
    });
    const auto weights = scaled_softmax_forward(scores, 1.0, bias);
    const float* const p = weights.data_ptr<float>();
    auto out = at::empty({l.batch, n, l.dim()}, qkv.options());
    float* const o = out.data_ptr<float>();
    blas::for_each_product(l.pairs(), l.score_multiply_adds(), [&](int64_t pair) {
      output.gemm(n, d, n, 1.0F, p + l.scores_offset(pair), n, false, x + l.qkv_offset(pair, kV), 3 * l.dim(), false,
                  o + l.merged_offset(pair), l.dim());
    });
    context->save_for_backward({qkv, weights});
    save_bias_shape(context, bias);
    context->saved_data["num_heads"] = num_heads;
    context->saved_data["scale"] = scale;
    context->saved_data["input_dtype"] = static_cast<int64_t>(qkv_in.scalar_type());
    context->saved_data["qkv_bias"] = qkv_bias.has_value();
    return output.finished(out);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 const torch::autograd::variable_list& output_grads) {
    const auto saved = context->get_saved_variables();
    const auto& qkv = saved[0];
    const auto& weights = saved[1];
    const auto scale = static_cast<float>(context->saved_data["scale"].toDouble());
    const auto l = layout_of(qkv, context->saved_data["num_heads"].toInt());
    const RoundedProducts qkv_grad(kBf16Values, l);
    const auto n = l.tokens, d = l.head_dim;
    const auto grad_out = kBf16Values ? bf16_values(output_grads[0]).contiguous() : output_grads[0].contiguous();
    const float* const x = qkv.data_ptr<float>();
    const float* const p = weights.data_ptr<float>();
    const float* const g = grad_out.data_ptr<float>();

    // dP = dO V^T and dV = P^T dO, per head.
    auto grad_weights = at::empty_like(weights);
    auto grad_qkv = at::empty_like(qkv);
    float* const gp = grad_weights.data_ptr<float>();
    float* const gx = grad_qkv.data_ptr<float>();
    blas::for_each_product(l.pairs(), 2 * l.score_multiply_adds(), [&](int64_t pair) {
      blas::gemm(n, n, d, 1.0F, g + l.merged_offset(pair), l.dim(), false, x + l.qkv_offset(pair, kV), 3 * l.dim(),
                 true, gp + l.scores_offset(pair), n);
      qkv_grad.gemm(n, d, n, 1.0F, p + l.scores_offset(pair), n, true, g + l.merged_offset(pair), l.dim(), false,
                    gx + l.qkv_offset(pair, kV), 3 * l.dim());
    });
    // dS = softmax'(dP); dQ = scale · dS K and dK = scale · dS^T Q, per head.
    const auto grad_scores = scaled_softmax_backward(grad_weights, weights, 1.0);
    const float* const gs = grad_scores.data_ptr<float>();
    blas::for_each_product(l.pairs(), 2 * l.score_multiply_adds(), [&](int64_t pair) {
      qkv_grad.gemm(n, d, n, scale, gs + l.scores_offset(pair), n, false, x + l.qkv_offset(pair, kK), 3 * l.dim(),
                    false, gx + l.qkv_offset(pair, kQ), 3 * l.dim());
      qkv_grad.gemm(n, d, n, scale, gs + l.scores_offset(pair), n, true, x + l.qkv_offset(pair, kQ), 3 * l.dim(), false,
                    gx + l.qkv_offset(pair, kK), 3 * l.dim());
    });
    const auto input_dtype = static_cast<at::ScalarType>(context->saved_data["input_dtype"].toInt());
    const auto grad_qkv_in = qkv_grad.finished(grad_qkv).to(input_dtype);
    auto gradients = input_gradients(context, grad_qkv_in, grad_scores, 1.0);
    at::Tensor grad_qkv_bias;
    // needs_input_grad counts the tensors given: qkv's bias follows the scores' bias where there is one.
    const size_t qkv_bias_input = context->saved_data.count("bias_sizes") > 0 ? 2 : 1;
    if (context->saved_data["qkv_bias"].toBool() && context->needs_input_grad(qkv_bias_input)) {
      grad_qkv_bias = grad_qkv_in.view({-1, grad_qkv_in.size(-1)}).sum(0);
    }
    gradients.insert(gradients.begin() + 2, grad_qkv_bias);
    return gradients;
  }
};

// bf16: no system BLAS multiplies bf16, and LibTorch's batched product (oneDNN) wants whole
// matrices, so q, k and v are copied once, head-major, and each product takes its operands in the
// layouts oneDNN reads fastest here: k and v transposed as views, never as copies.
struct HeadMajorAttention : public AttentionNode<HeadMajorAttention> {
  // [B, N, 3, H, Dh] -> [3, B·H, N, Dh]
  static at::Tensor heads_of(const at::Tensor& qkv, const HeadLayout& l) {
    return qkv.view({l.batch, l.tokens, 3, l.heads, l.head_dim})
        .permute({2, 0, 3, 1, 4})
        .contiguous()
        .view({3, l.pairs(), l.tokens, l.head_dim});
  }

  static at::Tensor attend(torch::autograd::AutogradContext* context, const at::Tensor& qkv, const at::Tensor& bias,
                           int64_t num_heads, double scale) {
    // The products are bf16 already; autocast would only re-dispatch them.
    const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
    const auto l = layout_of(qkv, num_heads);
    const auto heads = heads_of(qkv, l);
    const auto q = heads[kQ], k = heads[kK], v = heads[kV];
    const auto weights = scaled_softmax_forward(at::bmm(q, k.transpose(1, 2)), scale, bias);
    const auto out = at::bmm(weights, v).view({l.batch, l.heads, l.tokens, l.head_dim}).transpose(1, 2);
    context->save_for_backward({heads, weights});
    save_bias_shape(context, bias);
    context->saved_data["num_heads"] = num_heads;
    context->saved_data["scale"] = scale;
    return out.reshape({l.batch, l.tokens, l.dim()});
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 const torch::autograd::variable_list& output_grads) {
    const auto saved = context->get_saved_variables();
    const auto& heads = saved[0];
    const auto& weights = saved[1];
    const auto q = heads[kQ], k = heads[kK], v = heads[kV];
    const auto& grad_out = output_grads[0];
    const HeadLayout l{grad_out.size(0), grad_out.size(1), context->saved_data["num_heads"].toInt(), q.size(2)};
    const auto grad = grad_out.to(heads.scalar_type())
                          .view({l.batch, l.tokens, l.heads, l.head_dim})
                          .transpose(1, 2)
                          .reshape({l.pairs(), l.tokens, l.head_dim});
    // dV = P^T dO; dS = softmax'(dO V^T); dQ = dS K; dK = dS^T Q, written head-major in place.
    const auto grad_heads = at::empty_like(heads);
    const auto multiply_into = [&](int part, const at::Tensor& a, const at::Tensor& b) {
      auto out = grad_heads[part];
      at::bmm_out(out, a, b);
    };
    multiply_into(kV, weights.transpose(1, 2), grad);
    const auto scale = context->saved_data["scale"].toDouble();
    const auto grad_scores = scaled_softmax_backward(at::bmm(grad, v.transpose(1, 2)), weights, scale);
    multiply_into(kQ, grad_scores, k);
    multiply_into(kK, grad_scores.transpose(1, 2), q);
    // [3, B·H, N, Dh] -> [B, N, 3, H, Dh]
    const auto grad_qkv = grad_heads.view({3, l.batch, l.heads, l.tokens, l.head_dim})
                              .permute({1, 3, 0, 2, 4})
                              .reshape({l.batch, l.tokens, 3 * l.dim()});
    return input_gradients(context, grad_qkv, grad_scores, scale);
  }
};

// bf16 on CPUs with AMX: every product on the tile units, q, k and v read in place
// (amx_attention.h). The weights are kept padded, as they are and transposed, for the backward.
struct TileAttention : public AttentionNode<TileAttention> {
  static at::Tensor attend(torch::autograd::AutogradContext* context, const at::Tensor& qkv, const at::Tensor& bias,
                           int64_t num_heads, double scale) {
    auto [out, weights] = amx_attention_forward(qkv, num_heads, scale, bias);
    context->save_for_backward({qkv, weights.weights, weights.transposed});
    save_bias_shape(context, bias);
    context->saved_data["num_heads"] = num_heads;
    context->saved_data["scale"] = scale;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* context,
                                                 const torch::autograd::variable_list& output_grads) {
    const auto saved = context->get_saved_variables();
    const auto scale = context->saved_data["scale"].toDouble();
    const bool biased = context->saved_data.count("bias_sizes") > 0;
    const auto [grad_qkv, grad_scores] =
        amx_attention_backward(output_grads[0].to(at::kBFloat16).contiguous(), saved[0], {saved[1], saved[2]},
                               context->saved_data["num_heads"].toInt(), scale, biased);
    return input_gradients(context, grad_qkv, grad_scores, scale);
  }
};

bool is_projection(const at::Tensor& qkv) {
  return qkv.device().is_cpu() && qkv.layout() == at::kStrided && qkv.dim() == 3 && qkv.is_contiguous() &&
         qkv.numel() > 0 && qkv.size(2) <= INT_MAX && qkv.size(1) <= INT_MAX;
}

}  // namespace

bool fused_attention_applies(const at::Tensor& qkv) {
  if (!is_projection(qkv)) return false;
  if (qkv.scalar_type() == at::kFloat) return blas::kernels_apply();
  return qkv.scalar_type() == at::kBFloat16 && !torch::jit::tracer::isTracing();
}

namespace {

// The bias as the nodes take it: fp32, one per head. Differentiable outside the node, so that
// autograd takes the cast and the broadcast back.
at::Tensor per_head(const at::Tensor& bias, const at::Tensor& qkv, int64_t num_heads) {
  if (!bias.defined()) return bias;
  const auto n = qkv.size(1);
  TORCH_CHECK(bias.dim() == 4 && bias.size(0) > 0 && qkv.size(0) % bias.size(0) == 0 &&
                  (bias.size(1) == num_heads || bias.size(1) == 1) && bias.size(2) == n && bias.size(3) == n,
              "fused_attention: the bias must be [G, heads | 1, N, N] with G dividing the batch, got ", bias.sizes());
  return bias.to(at::kFloat).expand({bias.size(0), num_heads, n, n}).contiguous();
}

void check_heads(const at::Tensor& qkv, int64_t num_heads) {
  TORCH_CHECK(num_heads > 0 && qkv.size(2) % (3 * num_heads) == 0, "fused_attention: ", qkv.size(2),
              " channels do not split into q, k, v of ", num_heads, " heads");
}

}  // namespace

at::Tensor fused_attention(const at::Tensor& qkv, int64_t num_heads, double scale, const at::Tensor& bias) {
  TORCH_CHECK(fused_attention_applies(qkv),
              "fused_attention: qkv must be a contiguous fp32 or bf16 CPU tensor [B, N, 3D]");
  check_heads(qkv, num_heads);
  if (qkv.scalar_type() == at::kFloat)
    return FusedAttention<false>::run(qkv, per_head(bias, qkv, num_heads), {}, num_heads, scale);
  if (bf16_products_on_blas(qkv)) return attention_between_bf16_products(qkv, num_heads, scale, bias).to(at::kBFloat16);
  if (const auto l = layout_of(qkv, num_heads); amx_attention_applies(l.head_dim)) {
    const auto head_bias = per_head(bias, qkv, num_heads);
    // Without a backward to come (evaluation, inference) the weights are neither kept nor transposed.
    const bool gradients =
        at::GradMode::is_enabled() && (qkv.requires_grad() || (head_bias.defined() && head_bias.requires_grad()));
    if (!gradients) return amx_attention_forward(qkv, num_heads, scale, head_bias, false).first;
    return TileAttention::run(qkv, head_bias, num_heads, scale);
  }
  return HeadMajorAttention::run(qkv, per_head(bias, qkv, num_heads), num_heads, scale);
}

at::Tensor attention_between_bf16_products(const at::Tensor& qkv, int64_t num_heads, double scale,
                                           const at::Tensor& bias, const at::Tensor& qkv_bias) {
  TORCH_CHECK(is_projection(qkv) && (qkv.scalar_type() == at::kFloat || qkv.scalar_type() == at::kBFloat16) &&
                  bf16_products_on_blas(qkv),
              "attention_between_bf16_products: qkv must be a contiguous fp32 or bf16 CPU tensor [B, N, 3D], its "
              "bf16 products on the fp32 kernels");
  check_heads(qkv, num_heads);
  TORCH_CHECK(!qkv_bias.defined() || (qkv.scalar_type() == at::kFloat && qkv_bias.scalar_type() == at::kFloat &&
                                      qkv_bias.dim() == 1 && qkv_bias.size(0) == qkv.size(2)),
              "attention_between_bf16_products: qkv's bias must be fp32 [3D] on an fp32 qkv, got ",
              qkv_bias.defined() ? qkv_bias.sizes() : at::IntArrayRef{});
  return FusedAttention<true>::run(qkv, per_head(bias, qkv, num_heads), qkv_bias, num_heads, scale);
}

}  // namespace vit::models
