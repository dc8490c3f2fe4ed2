#pragma once

#include "models/core/model_options.h"

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <string>
#include <type_traits>
#include <vector>

namespace vit::models {

// What the application asks of every architecture: logits for images, which parameters weight
// decay and a backbone learning-rate scale apply to, attention to show, and a cost model for
// `vit info` and the memory check. Parameter names follow timm's state_dict keys.
class ImageModelImpl : public torch::nn::Module {
 public:
  // [B, C, H, W] -> logits [B, num_classes] (pooled features [B, D] when there is no head).
  virtual torch::Tensor forward(const torch::Tensor& images) = 0;

  // What a training step supervises: the logits the labels do and those a teacher's predictions
  // do (DeiT's distillation head). One pass; models with a single head give the same logits twice.
  struct TrainingOutputs {
    torch::Tensor logits;
    torch::Tensor distillation_logits;
  };
  virtual TrainingOutputs forward_train(const torch::Tensor& images);

  virtual const ModelOptions& model_options() const = 0;
  ModelShape shape() const { return shape_of(model_options()); }
  // The TorchScript class name of an exported model ("VisionTransformer").
  virtual std::string class_name() const = 0;

  // timm's rule by default: matrices decay, biases and norm weights (1-D) do not.
  virtual bool decays(const std::string& name, const torch::Tensor& parameter) const;
  // The classifier's parameters, which `train.backbone_lr_scale` leaves at the full rate.
  virtual bool in_head(const std::string& name) const;
  // Layer-wise learning-rate decay (`train.layer_decay`, BEiT/MAE): the layer a parameter belongs
  // to, from 0 (the embeddings) to layer_count() (the final norm and the head, at the full rate).
  // Models without layers put every parameter at layer_count() 0.
  virtual int64_t layer_count() const { return 0; }
  virtual int64_t layer_of(const std::string& /*name*/) const { return layer_count(); }

  // What attention_maps gives: `blocks` maps of `heads` heads whose rows of the `prefix_tokens`
  // special tokens (class, then distillation) cover a grid x grid patch grid placed after them;
  // all 0 when the architecture has no class-token attention to show.
  struct AttentionLayout {
    int64_t blocks = 0;
    int64_t heads = 0;
    int64_t grid = 0;
    int64_t prefix_tokens = 1;
  };
  virtual AttentionLayout attention_layout() const { return {}; }
  // Every block's attention weights [B, heads, tokens, tokens], special tokens first, in block order.
  virtual std::vector<torch::Tensor> attention_maps(const torch::Tensor& images);

  // The cost model: multiply-accumulates per image of one part ("patch_embed", "blocks.3",
  // "head"; what named_children and their ModuleList entries are called), the sequence length,
  // and the bytes training keeps per image between forward and backward (fp32).
  virtual int64_t macs(const std::string& part) const = 0;
  // What this implementation's forward multiplies of it, where it skips products whose results
  // nothing reads (a ViT with a class-token head: the last block's queries, output projection and
  // MLP of the patch tokens); macs(part) where it skips none.
  virtual int64_t executed_macs(const std::string& part) const { return macs(part); }
  virtual int64_t tokens() const = 0;
  virtual int64_t activation_bytes() const = 0;
};

// Holds any architecture (ModuleHolder's forwarding constructor would try to build the interface).
class ImageModel : public torch::nn::ModuleHolder<ImageModelImpl> {
 public:
  /* implicit */ ImageModel(std::nullptr_t) : ModuleHolder(nullptr) {}
  template <typename Impl, typename = std::enable_if_t<std::is_base_of_v<ImageModelImpl, Impl>>>
  /* implicit */ ImageModel(std::shared_ptr<Impl> module)
      : ModuleHolder(std::shared_ptr<ImageModelImpl>(std::move(module))) {}
};

}  // namespace vit::models
