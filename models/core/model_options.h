#pragma once

#include <any>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

namespace vit::models {

// The hyper-parameters of one architecture, whichever it is: the options struct that the
// architecture declares (VitOptions for "vit") under the architecture's registry name. Code
// outside the architecture reads them through the registry (fields, shape), never by type.
class ModelOptions {
 public:
  ModelOptions() = default;
  template <typename Options>
  ModelOptions(std::string arch, Options options) : arch_(std::move(arch)), options_(std::move(options)) {}

  const std::string& arch() const { return arch_; }

  template <typename Options>
  const Options& as() const {
    const auto* options = std::any_cast<Options>(&options_);
    if (options == nullptr) throw std::logic_error("model options of '" + arch_ + "' read as another architecture's");
    return *options;
  }
  template <typename Options>
  Options& as() {
    return const_cast<Options&>(std::as_const(*this).as<Options>());
  }

 private:
  std::string arch_;
  std::any options_;
};

// What every architecture takes and gives, known before it is built.
struct ModelShape {
  int64_t image_size = 0;   // square inputs of this side
  int64_t in_chans = 0;     // image channels
  int64_t num_classes = 0;  // 0: no head, the model gives pooled features
};

// What training optimises: the class labels, the images themselves (masked image modelling: MAE),
// which needs no labels, or the objects' classes and boxes (detection: DETR).
enum class Objective { Classification, MaskedImageModeling, Detection };

// The registry's default architecture with its defaults (a ViT-B/16 for "vit").
ModelOptions default_model_options();
// Throws std::invalid_argument naming the first inconsistent field.
void validate(const ModelOptions& options);
ModelShape shape_of(const ModelOptions& options);
Objective objective_of(const ModelOptions& options);

}  // namespace vit::models
