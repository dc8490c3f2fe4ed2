#include "app/train/teacher.h"

#include "app/commands/common_options.h"
#include "app/errors.h"
#include "app/io/checkpoint.h"
#include "app/io/checksummed_file.h"
#include "app/io/trained_model.h"
#include "data/transforms.h"
#include "models/core/model_options.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/script.h>
#include <nlohmann/json.hpp>

#include <optional>

namespace vit::app {
namespace {

namespace fs = std::filesystem;

struct Normalization {
  std::vector<double> mean;
  std::vector<double> std;
};

Normalization normalization_of(const data::TransformOptions& transforms, const models::ModelShape& shape) {
  const data::Transform transform(transforms, static_cast<int>(shape.image_size), static_cast<int>(shape.in_chans));
  return {transform.mean(), transform.std()};
}

// The first line of an exception's message: TorchScript's carry the whole interpreter trace.
std::string first_line(const std::string& message) { return message.substr(0, message.find('\n')); }

}  // namespace

Teacher::Teacher(const Config& student, torch::Device device) {
  const auto& name = student.train.distillation.teacher;
  const auto where = "train.distillation.teacher " + name;
  const auto shape = models::shape_of(student.model.options);
  const auto path = resolve_checkpoint(name);
  std::error_code error;
  if (!fs::is_regular_file(path, error)) throw ConfigError(where + ": no such file");

  std::optional<Normalization> teacher_normalization;
  std::string not_a_checkpoint;
  try {
    auto trained = load_trained_model(path, CommonOptions{}, false, device);
    const auto teacher_shape = models::shape_of(trained.config.model.options);
    teacher_normalization = normalization_of(trained.config.data.val_transforms, teacher_shape);
    description_ = fmt::format("vitcpp checkpoint {} ({})", path.string(), trained.config.model.options.arch());
    forward_ = [model = trained.model](const torch::Tensor& inputs) mutable { return model(inputs); };
  } catch (const FileError& e) {
    not_a_checkpoint = e.what();
  }
  if (!forward_) {
    torch::jit::ExtraFilesMap extra{{"config.json", ""}};
    try {
      auto module = std::make_shared<torch::jit::Module>(torch::jit::load(path.string(), device, extra));
      module->eval();
      forward_ = [module](const torch::Tensor& inputs) {
        const auto output = module->forward({inputs});
        if (!output.isTensor()) throw std::runtime_error("returns " + output.tagKind() + ", not a tensor of logits");
        return output.toTensor();
      };
    } catch (const std::exception& e) {
      throw ConfigError(fmt::format("{}: neither a vitcpp checkpoint ({}) nor a TorchScript module ({})", where,
                                    not_a_checkpoint, first_line(e.what())));
    }
    description_ = "TorchScript module " + path.string();
    // A vitcpp export describes the preprocessing it was trained with.
    const auto metadata = nlohmann::json::parse(extra["config.json"], nullptr, /*allow_exceptions=*/false);
    if (metadata.is_object() && metadata.contains("mean") && metadata.contains("std")) {
      teacher_normalization =
          Normalization{metadata["mean"].get<std::vector<double>>(), metadata["std"].get<std::vector<double>>()};
    }
  }
  fingerprint_ = file_fingerprint(path);

  const auto student_normalization = normalization_of(student.data.train_transforms, shape);
  if (teacher_normalization && teacher_normalization->mean.size() == student_normalization.mean.size() &&
      (teacher_normalization->mean != student_normalization.mean ||
       teacher_normalization->std != student_normalization.std)) {
    const auto per_channel = [&](const std::vector<double>& values) {
      return torch::tensor(values, torch::kFloat32).view({1, -1, 1, 1}).to(device);
    };
    const auto teacher_std = per_channel(teacher_normalization->std);
    scale_ = per_channel(student_normalization.std) / teacher_std;
    offset_ = (per_channel(student_normalization.mean) - per_channel(teacher_normalization->mean)) / teacher_std;
    description_ +=
        fmt::format(", inputs renormalized to its mean {} and std {}", fmt::join(teacher_normalization->mean, "/"),
                    fmt::join(teacher_normalization->std, "/"));
  }

  // A probe batch of the student's input: the teacher must take it and give one logit per class.
  const auto probe = torch::zeros({2, shape.in_chans, shape.image_size, shape.image_size}, device);
  torch::Tensor logits;
  try {
    logits = this->logits(probe);
  } catch (const std::exception& e) {
    throw ConfigError(fmt::format("{}: does not take the student's input [2, {}, {}, {}]: {}", where, shape.in_chans,
                                  shape.image_size, shape.image_size, first_line(e.what())));
  }
  if (logits.dim() != 2 || logits.size(0) != 2 || logits.size(1) != shape.num_classes) {
    throw ConfigError(fmt::format("{}: gives [{}] for a batch of 2; the student needs [2, {}] (model.num_classes {})",
                                  where, fmt::join(logits.sizes(), ", "), shape.num_classes, shape.num_classes));
  }
}

torch::Tensor Teacher::logits(const torch::Tensor& inputs) const {
  torch::NoGradGuard no_grad;
  return forward_(scale_.defined() ? inputs * scale_ + offset_ : inputs);
}

}  // namespace vit::app
