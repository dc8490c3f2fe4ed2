#pragma once

#include "models/core/fields.h"
#include "models/core/image_model.h"
#include "models/core/named_tensors.h"

#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace vit::models {

// Whose names a weight file uses: timm's (vitcpp's own), torchvision's, or DeiT's release files.
enum class WeightLayout { Timm, Torchvision, Deit };
inline const NameTable<WeightLayout> kWeightLayoutNames = {
    {"timm", WeightLayout::Timm}, {"torchvision", WeightLayout::Torchvision}, {"deit", WeightLayout::Deit}};

// What `vit import` asks for besides the weights.
struct ImportRequest {
  WeightLayout layout = WeightLayout::Timm;
  std::string preset;                    // empty: the architecture comes from the tensors' shapes
  std::optional<ModelOptions> declared;  // what the file says it is (vitcpp's own exports)
  std::optional<int64_t> num_heads;      // without a preset (the shapes do not tell)
  std::optional<int64_t> image_size;     // adapt the weights to this input size
  std::optional<int64_t> window_size;    // windowed attention (Swin): resample the bias tables to this window
  std::optional<int64_t> num_classes;    // a fresh head with this many outputs (0: no head)
};

struct ImportedModel {
  ModelOptions options;
  ImageModel model{nullptr};
  std::vector<std::string> notes;  // what was changed on the way (resampled, new head), for the log
};

// Weights that do not fit the architecture: missing, unexpected or wrongly shaped tensors, named.
class WeightsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Copies `weights` (timm's names) into the model's parameters, except the `fresh` ones that keep
// their initialisation; buffers are the model's own (fixed tables, indices, masks). Throws
// WeightsError listing missing, unexpected and wrongly shaped tensors.
void copy_weights(ImageModelImpl& model, const NamedTensors& weights, const std::set<std::string>& fresh = {});

// The tensor `name` of weights being imported; a WeightsError naming it where the file lacks it.
const torch::Tensor& tensor_named(const NamedTensors& weights, const std::string& name);

// One architecture of the family: its options (declared field by field), presets, how to build
// it and how to read pretrained weights into it. A new architecture is a folder in models/ and
// one entry in registry.cpp.
class Architecture {
 public:
  virtual ~Architecture() = default;
  virtual std::string name() const = 0;  // model.arch
  virtual std::string summary() const = 0;
  virtual ModelOptions defaults() const = 0;
  virtual const std::vector<OptionField>& fields() const = 0;
  virtual std::vector<std::string> preset_names() const = 0;
  // Throws std::invalid_argument for a name preset_names() lacks.
  virtual ModelOptions preset(const std::string& name) const = 0;
  // Throws std::invalid_argument naming the first inconsistent field.
  virtual void validate(const ModelOptions& options) const = 0;
  virtual ModelShape shape(const ModelOptions& options) const = 0;
  virtual Objective objective() const { return Objective::Classification; }
  virtual ImageModel build(const ModelOptions& options) const = 0;
  // `weights` in the layout's names; throws WeightsError when they do not fit and
  // std::invalid_argument for a request that contradicts them.
  virtual ImportedModel import_weights(NamedTensors weights, const ImportRequest& request) const;
};

}  // namespace vit::models
