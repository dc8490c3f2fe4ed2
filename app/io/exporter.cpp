#include "app/io/exporter.h"

#include "app/io/file_util.h"

#include <fmt/format.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/script.h>

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

torch::jit::Module trace(models::ImageModel& model, const torch::Tensor& example) {
  const auto name = model->class_name();
  torch::jit::Module root("vitcpp." + name);
  mirror(root, *model, name);
  auto traced = torch::jit::tracer::trace(
      {example}, [&](torch::jit::Stack inputs) { return torch::jit::Stack{model(inputs[0].toTensor())}; },
      [](const torch::autograd::Variable&) { return std::string(); }, /*strict=*/false, /*force_outplace=*/false,
      &root);
  auto forward = root._ivalue()->compilation_unit()->create_function(
      c10::QualifiedName(*root.type()->name(), "forward"), traced.first->graph);
  root.type()->addMethod(forward);
  root.eval();
  return root;
}

}  // namespace

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
    const double difference = (reloaded.forward({input}).toTensor() - model(input)).abs().max().item<double>();
    if (!(difference <= 1e-4)) {
      std::filesystem::remove(file);
      throw std::runtime_error(fmt::format("{}: the exported module differs from the model by {:.3g} at batch size {}",
                                           file.string(), difference, batch));
    }
  }
}

}  // namespace vit::app
