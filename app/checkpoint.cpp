#include "app/checkpoint.h"

#include "app/ema.h"
#include "app/file_util.h"
#include "data/errors.h"

#include <ATen/Context.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/serialize/output-archive.h>

#include <map>

namespace vit::app {
namespace {

const char* const kMagic = "vitcpp-checkpoint";

c10::IValue string_list(const std::vector<std::string>& values) {
  c10::List<std::string> list;
  for (const auto& value : values) list.push_back(value);
  return list;
}

torch::Generator generator_for(torch::Device device) {
  return at::globalContext().defaultGenerator(device.is_cuda() ? device : torch::Device(torch::kCPU));
}

std::map<std::string, std::vector<int64_t>> tensor_shapes(const torch::nn::Module& module) {
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& item : module.named_parameters()) shapes[item.key()] = item.value().sizes().vec();
  for (const auto& item : module.named_buffers()) shapes[item.key()] = item.value().sizes().vec();
  return shapes;
}

}  // namespace

void save_checkpoint(const std::filesystem::path& file, const CheckpointContents& contents) {
  torch::serialize::OutputArchive archive;
  archive.write("magic", c10::IValue(std::string(kMagic)));
  archive.write("format_version", c10::IValue(kCheckpointFormatVersion));
  archive.write("config", c10::IValue(contents.config_yaml));
  archive.write("class_names", string_list(contents.class_names));
  archive.write("epoch", c10::IValue(contents.state.epoch));
  archive.write("batch_in_epoch", c10::IValue(contents.state.batch_in_epoch));
  archive.write("step", c10::IValue(contents.state.step));
  archive.write("best_top1", c10::IValue(contents.state.best_top1));

  torch::serialize::OutputArchive model;
  (*contents.model)->save(model);
  archive.write("model", model);
  if (contents.ema != nullptr) {
    torch::serialize::OutputArchive ema;
    contents.ema->model()->save(ema);
    archive.write("ema", ema);
  }
  if (contents.optimizer != nullptr) {
    torch::serialize::OutputArchive optimizer;
    contents.optimizer->save(optimizer);
    archive.write("optimizer", optimizer);
  }
  archive.write("rng_cpu", generator_for(torch::kCPU).get_state(), /*is_buffer=*/true);
  if (contents.device.is_cuda()) archive.write("rng_cuda", generator_for(contents.device).get_state(), true);

  write_stream_atomically(file, [&](const ByteSink& sink) {
    archive.save_to([&](const void* data, size_t size) {
      sink(data, size);
      return size;
    });
  });
}

CheckpointReader::CheckpointReader(const std::filesystem::path& file) : file_(file) {
  const auto fail = [&](const std::string& why) { throw data::DataError(file.string() + ": " + why); };
  std::error_code error;
  if (!std::filesystem::is_regular_file(file, error)) fail("no such checkpoint file");
  try {
    archive_.load_from(file.string());
  } catch (const c10::Error& e) {
    fail("not a readable vitcpp checkpoint (truncated or not a checkpoint file)");
  }
  c10::IValue value;
  if (!archive_.try_read("magic", value) || !value.isString() || value.toStringRef() != kMagic) {
    fail("not a vitcpp checkpoint");
  }
  if (!archive_.try_read("format_version", value) || !value.isInt()) fail("checkpoint has no format version");
  if (value.toInt() > kCheckpointFormatVersion) {
    fail("checkpoint format version " + std::to_string(value.toInt()) + " is newer than this vit supports (" +
         std::to_string(kCheckpointFormatVersion) + "); upgrade vitcpp");
  }
  try {
    archive_.read("config", value);
    config_yaml_ = value.toStringRef();
    archive_.read("class_names", value);
    for (const auto& name : value.toListRef()) class_names_.push_back(name.toStringRef());
    archive_.read("epoch", value);
    state_.epoch = value.toInt();
    archive_.read("batch_in_epoch", value);
    state_.batch_in_epoch = value.toInt();
    archive_.read("step", value);
    state_.step = value.toInt();
    archive_.read("best_top1", value);
    state_.best_top1 = value.toDouble();
  } catch (const c10::Error& e) {
    fail(std::string("checkpoint metadata is incomplete: ") + e.what_without_backtrace());
  }
  torch::serialize::InputArchive ema;
  has_ema_ = archive_.try_read("ema", ema);
}

void CheckpointReader::load_model(models::VisionTransformer& model, bool ema) {
  if (ema && !has_ema_) throw data::DataError(file_.string() + ": checkpoint holds no EMA weights");
  const auto fail = [&](const std::string& why) {
    throw data::DataError(file_.string() + ": weights do not fit the model of its config: " + why);
  };
  // LibTorch's loader replaces a tensor of another shape without complaint; compare afterwards.
  const auto expected = tensor_shapes(*model);
  torch::serialize::InputArchive weights;
  try {
    archive_.read(ema ? "ema" : "model", weights);
    model->load(weights);
  } catch (const c10::Error& e) {
    fail(e.what_without_backtrace());
  }
  for (const auto& [name, shape] : tensor_shapes(*model)) {
    if (shape != expected.at(name)) {
      fail(fmt::format("{} is [{}] in the checkpoint but [{}] in the model", name, fmt::join(shape, ", "),
                       fmt::join(expected.at(name), ", ")));
    }
  }
}

void CheckpointReader::load_optimizer(torch::optim::Optimizer& optimizer) {
  torch::serialize::InputArchive state;
  try {
    archive_.read("optimizer", state);
    optimizer.load(state);
  } catch (const c10::Error& e) {
    throw data::DataError(file_.string() + ": optimizer state does not fit: " + e.what_without_backtrace());
  }
}

void CheckpointReader::restore_random_state(torch::Device device) {
  torch::Tensor state;
  if (archive_.try_read("rng_cpu", state)) generator_for(torch::kCPU).set_state(state);
  if (device.is_cuda() && archive_.try_read("rng_cuda", state)) generator_for(device).set_state(state);
}

std::filesystem::path resolve_checkpoint(const std::filesystem::path& run_dir_or_file) {
  std::error_code error;
  if (std::filesystem::is_directory(run_dir_or_file, error)) return run_dir_or_file / "last.ckpt";
  return run_dir_or_file;
}

}  // namespace vit::app
