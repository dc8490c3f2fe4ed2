#include "models/complexity.h"

namespace vit::models {
namespace {

int64_t count_elements(const std::vector<torch::Tensor>& tensors) {
  int64_t total = 0;
  for (const auto& tensor : tensors) total += tensor.numel();
  return total;
}

int64_t block_macs(const VitOptions& o) {
  const int64_t tokens = o.num_tokens();
  const int64_t dim = o.embed_dim;
  const int64_t projections = tokens * (3 * dim * dim + dim * dim + 2 * dim * o.mlp_hidden_dim());
  const int64_t attention = 2 * tokens * tokens * dim;  // QK^T and weights x V over all heads
  return projections + attention;
}

int64_t child_macs(const std::string& name, const VitOptions& o) {
  if (name == "patch_embed") return o.num_patches() * o.embed_dim * o.in_chans * o.patch_size * o.patch_size;
  if (name.rfind("blocks.", 0) == 0) return block_macs(o);
  if (name == "head") return o.embed_dim * o.num_classes;
  return 0;
}

int64_t activation_bytes(const VitOptions& o) {
  const int64_t tokens = o.num_tokens();
  const int64_t token_states = tokens * o.embed_dim;
  const int64_t attention_weights = o.num_heads * tokens * tokens;
  int64_t block = 8 * token_states + 2 * tokens * o.mlp_hidden_dim() + attention_weights;
  if (o.drop_rate > 0.0) block += 3 * token_states + tokens * o.mlp_hidden_dim();
  if (o.attn_drop_rate > 0.0) block += attention_weights;
  const int64_t embedding = o.in_chans * o.image_size * o.image_size + 2 * token_states;
  return static_cast<int64_t>(sizeof(float)) * (embedding + (o.depth + 1) * block);
}

}  // namespace

ModelComplexity measure_complexity(VisionTransformer& model) {
  const auto& options = model->options();
  ModelComplexity result;
  result.tokens = options.num_tokens();
  result.activation_bytes = activation_bytes(options);
  result.parameters = count_elements(model->parameters());

  for (const auto& item : model->named_parameters(/*recurse=*/false)) {
    result.modules.push_back({item.key(), item.value().numel(), 0});
  }
  for (const auto& item : model->named_children()) {
    if (item.key() == "blocks") {
      for (const auto& block : item.value()->named_children()) {
        const auto name = "blocks." + block.key();
        result.modules.push_back({name, count_elements(block.value()->parameters()), child_macs(name, options)});
      }
    } else if (const auto parameters = count_elements(item.value()->parameters()); parameters > 0) {
      result.modules.push_back({item.key(), parameters, child_macs(item.key(), options)});
    }
  }
  for (const auto& module : result.modules) result.macs += module.macs;
  return result;
}

}  // namespace vit::models
