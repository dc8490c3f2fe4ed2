#include "app/io/exporter.h"

#include "app/errors.h"
#include "app/io/file_util.h"
#include "app/io/weight_files.h"
#include "app/runtime/process.h"
#include "models/core/registry.h"

#include <fmt/format.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/script.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <sstream>

namespace vit::app {
namespace {

// A TorchScript module tree holding the same tensors as `source`, named as in `source`, so the
// tracer records parameter reads as attribute reads instead of baking the weights in.
void mirror(torch::jit::Module& target, torch::nn::Module& source, const std::string& path) {
  for (const auto& parameter : source.named_parameters(/*recurse=*/false)) {
    target.register_parameter(parameter.key(), parameter.value(), /*is_buffer=*/false);
  }
  for (const auto& buffer : source.named_buffers(/*recurse=*/false))
    target.register_buffer(buffer.key(), buffer.value());
  for (const auto& child : source.named_children()) {
    const auto child_path = path + "_" + child.key();
    torch::jit::Module module("vitcpp." + child_path);
    mirror(module, *child.value(), child_path);
    target.register_module(child.key(), module);
  }
}

// What the exported module returns: the logits, or for a detector the tuple (class logits, boxes).
c10::IValue outputs(models::ImageModel& model, const torch::Tensor& images) {
  if (auto* detector = models::detection_model(model)) {
    const auto predictions = detector->detect(images);
    return c10::ivalue::Tuple::create({predictions.logits, predictions.boxes});
  }
  return model(images);
}

// The largest difference between two outputs of the same structure.
double max_difference(const c10::IValue& a, const c10::IValue& b) {
  if (a.isTuple()) {
    double largest = 0.0;
    const auto& left = a.toTupleRef().elements();
    const auto& right = b.toTupleRef().elements();
    for (size_t i = 0; i < left.size(); ++i) largest = std::max(largest, max_difference(left[i], right[i]));
    return largest;
  }
  return (a.toTensor() - b.toTensor()).abs().max().item<double>();
}

torch::jit::Module trace(models::ImageModel& model, const torch::Tensor& example) {
  const auto name = model->class_name();
  torch::jit::Module root("vitcpp." + name);
  mirror(root, *model, name);
  auto traced = torch::jit::tracer::trace(
      {example}, [&](torch::jit::Stack inputs) { return torch::jit::Stack{outputs(model, inputs[0].toTensor())}; },
      [](const torch::autograd::Variable&) { return std::string(); }, /*strict=*/false, /*force_outplace=*/false,
      &root);
  auto forward = root._ivalue()->compilation_unit()->create_function(
      c10::QualifiedName(*root.type()->name(), "forward"), traced.first->graph);
  root.type()->addMethod(forward);
  root.eval();
  return root;
}

void export_torchscript(models::ImageModel& model, const std::filesystem::path& file,
                        const std::string& metadata_json) {
  const auto o = model->shape();
  const auto device = model->parameters().front().device();
  model->eval();
  torch::NoGradGuard no_grad;
  const auto example = torch::randn({2, o.in_chans, o.image_size, o.image_size}, torch::TensorOptions().device(device));
  auto module = trace(model, example);
  const torch::jit::ExtraFilesMap extra{{"config.json", metadata_json}};
  std::ostringstream archive;
  module.save(archive, extra);
  write_text_atomically(file, archive.str());

  auto reloaded = torch::jit::load(file.string(), device);
  for (const int64_t batch : {1, 3}) {
    const auto input = torch::randn({batch, o.in_chans, o.image_size, o.image_size}, example.options());
    const double difference = max_difference(reloaded.forward({input}), outputs(model, input));
    if (!(difference <= 1e-4)) {
      std::filesystem::remove(file);
      throw std::runtime_error(fmt::format("{}: the exported module differs from the model by {:.3g} at batch size {}",
                                           file.string(), difference, batch));
    }
  }
}

models::NamedTensors state_dict(models::ImageModel& model) {
  models::NamedTensors tensors;
  for (const auto& parameter : model->named_parameters()) tensors[parameter.key()] = parameter.value();
  for (const auto& buffer : model->named_buffers()) tensors[buffer.key()] = buffer.value();
  return tensors;
}

// safetensors metadata holds strings only: numbers and lists become their JSON text.
TextMetadata safetensors_metadata(const std::string& metadata_json) {
  TextMetadata metadata;
  const auto description = nlohmann::json::parse(metadata_json);  // outlives the loop over its items
  for (const auto& [key, value] : description.items()) {
    metadata[key] = value.is_string() ? value.get<std::string>() : value.dump();
  }
  metadata["format"] = "pt";
  return metadata;
}

// The installed copy (<prefix>/share/vitcpp/scripts) or, in a build tree, the source's.
std::filesystem::path onnx_script() {
  const auto installed = executable_dir() / "../share/vitcpp/scripts/export_onnx.py";
  std::error_code error;
  if (std::filesystem::exists(installed, error)) return installed.lexically_normal();
  return std::filesystem::path(VIT_SOURCE_SCRIPTS) / "export_onnx.py";
}

void export_onnx(models::ImageModel& model, const std::filesystem::path& file, const std::string& metadata_json) {
  const TemporaryDirectory scratch("vit_onnx_");
  const auto torchscript = scratch.path() / "model.pt";
  export_torchscript(model, torchscript, metadata_json);
  const auto script = onnx_script();
  const auto interpreter = python_interpreter();
  const int exit_code = run_program({interpreter, script.string(), torchscript.string(), file.string()});
  if (exit_code == 127) {
    throw FileError(
        fmt::format("--format onnx runs {} {}, which could not be started; install python3-torch and "
                    "python3-onnx, or set VIT_PYTHON",
                    interpreter, script.string()));
  }
  if (exit_code != 0) {
    throw FileError(
        fmt::format("--format onnx: {} failed (exit code {}); see its message above", script.string(), exit_code));
  }
}

}  // namespace

void export_model(models::ImageModel& model, ExportFormat format, const std::filesystem::path& file,
                  const std::string& metadata_json) {
  model->eval();
  switch (format) {
    case ExportFormat::TorchScript:
      return export_torchscript(model, file, metadata_json);
    case ExportFormat::Safetensors:
      return write_safetensors(file, state_dict(model), safetensors_metadata(metadata_json));
    case ExportFormat::Pth:
      return write_torch_state_dict(file, state_dict(model));
    case ExportFormat::Onnx:
      return export_onnx(model, file, metadata_json);
  }
}

}  // namespace vit::app
