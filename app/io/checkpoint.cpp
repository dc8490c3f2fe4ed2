#include "app/io/checkpoint.h"

#include "app/errors.h"
#include "app/io/checksummed_file.h"
#include "app/io/file_util.h"
#include "app/train/ema.h"
#include "app/train/loss_scaler.h"
#include "app/train/optimizer_state_key.h"

#include <ATen/Context.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>
#include <torch/serialize/output-archive.h>
#include <torch/types.h>

#include <map>
#include <set>
#include <string>

namespace vit::app {
namespace {

const char* const kMagic = "VITCKPT";

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

// Every tensor of a module archive by dotted name, through its nested module archives.
void collect_tensors(torch::serialize::InputArchive& archive, const std::string& prefix,
                     std::map<std::string, torch::Tensor>& tensors) {
  for (const auto& key : archive.keys()) {
    torch::Tensor tensor;
    torch::serialize::InputArchive child;
    if (archive.try_read(key, tensor)) {
      tensors[prefix + key] = tensor;
    } else if (archive.try_read(key, child)) {
      collect_tensors(child, prefix + key + ".", tensors);
    }
  }
}

}  // namespace

void save_optimizer_state(torch::serialize::OutputArchive& archive, const torch::optim::Optimizer& optimizer) {
  const auto size = [](size_t count) { return torch::tensor(static_cast<int64_t>(count)); };
  archive.write("pytorch_version", c10::IValue("1.5.0"));
  torch::serialize::OutputArchive states(archive.compilation_unit());
  torch::serialize::OutputArchive groups(archive.compilation_unit());
  groups.write("param_groups/size", size(optimizer.param_groups().size()));
  int64_t position = 0;
  for (size_t index = 0; index < optimizer.param_groups().size(); ++index) {
    const auto& param_group = optimizer.param_groups()[index];
    torch::serialize::OutputArchive group(archive.compilation_unit());
    group.write("params/size", size(param_group.params().size()));
    for (size_t member = 0; member < param_group.params().size(); ++member) {
      const auto name = std::to_string(position++);
      group.write("params/" + std::to_string(member), c10::IValue(name));
      const auto state = optimizer.state().find(optimizer_state_key(param_group.params()[member]));
      if (state == optimizer.state().end()) continue;
      torch::serialize::OutputArchive state_archive(archive.compilation_unit());
      state->second->serialize(state_archive);
      states.write(name, state_archive);
    }
    torch::serialize::OutputArchive options(archive.compilation_unit());
    param_group.options().serialize(options);
    group.write("options", options);
    groups.write("param_groups/" + std::to_string(index), group);
  }
  archive.write("state", states);
  archive.write("param_groups", groups);
}

void load_optimizer_state(torch::serialize::InputArchive& archive, torch::optim::Optimizer& optimizer) {
  c10::IValue version;
  archive.read("pytorch_version", version);
  TORCH_CHECK(version.isString() && version.toStringRef() == "1.5.0", "unknown optimizer archive version");
  const bool adamw = dynamic_cast<torch::optim::AdamW*>(&optimizer) != nullptr;
  TORCH_CHECK(adamw || dynamic_cast<torch::optim::SGD*>(&optimizer) != nullptr,
              "optimizer states of AdamW and SGD only");
  const auto fresh_state = [adamw]() -> std::unique_ptr<torch::optim::OptimizerParamState> {
    if (adamw) return std::make_unique<torch::optim::AdamWParamState>();
    return std::make_unique<torch::optim::SGDParamState>();
  };
  torch::serialize::InputArchive states, groups;
  archive.read("state", states);
  archive.read("param_groups", groups);
  torch::Tensor size;
  groups.read("param_groups/size", size);
  auto& param_groups = optimizer.param_groups();
  TORCH_CHECK(size.item<int64_t>() == static_cast<int64_t>(param_groups.size()), "it holds ", size.item<int64_t>(),
              " parameter groups, the optimizer ", param_groups.size());
  for (size_t index = 0; index < param_groups.size(); ++index) {
    torch::serialize::InputArchive group;
    groups.read("param_groups/" + std::to_string(index), group);
    group.read("params/size", size);
    const auto& params = param_groups[index].params();
    TORCH_CHECK(size.item<int64_t>() == static_cast<int64_t>(params.size()), "its parameter group ", index, " holds ",
                size.item<int64_t>(), " parameters, the optimizer's ", params.size());
    for (size_t member = 0; member < params.size(); ++member) {
      c10::IValue name;
      group.read("params/" + std::to_string(member), name);
      torch::serialize::InputArchive state_archive;
      if (!states.try_read(name.toStringRef(), state_archive)) continue;  // no step taken yet
      auto state = fresh_state();
      state->serialize(state_archive);
      optimizer.state()[optimizer_state_key(params[member])] = std::move(state);
    }
  }
}

void save_checkpoint(const std::filesystem::path& file, const CheckpointContents& contents) {
  torch::serialize::OutputArchive archive;
  archive.write("config", c10::IValue(contents.config_yaml));
  archive.write("class_names", string_list(contents.class_names));
  if (!contents.category_ids.empty()) archive.write("category_ids", c10::IValue(contents.category_ids));
  archive.write("epoch", c10::IValue(contents.state.epoch));
  archive.write("batch_in_epoch", c10::IValue(contents.state.batch_in_epoch));
  archive.write("step", c10::IValue(contents.state.step));
  archive.write("best_top1", c10::IValue(contents.state.best_top1));
  if (!contents.teacher_fingerprint.empty()) archive.write("teacher", c10::IValue(contents.teacher_fingerprint));

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
    save_optimizer_state(optimizer, *contents.optimizer);
    archive.write("optimizer", optimizer);
  }
  if (contents.loss_scaler != nullptr && contents.loss_scaler->enabled()) {
    archive.write("loss_scaler", contents.loss_scaler->state(), /*is_buffer=*/true);
  }
  archive.write("rng_cpu", generator_for(torch::kCPU).get_state(), /*is_buffer=*/true);
  if (contents.device.is_cuda()) archive.write("rng_cuda", generator_for(contents.device).get_state(), true);

  write_stream_atomically(file, [&](const ByteSink& sink) {
    write_checksummed(sink, kMagic, kCheckpointFormatVersion, [&](const ByteSink& payload) {
      archive.save_to([&](const void* data, size_t size) {
        payload(data, size);
        return size;
      });
    });
  });
}

CheckpointReader::CheckpointReader(const std::filesystem::path& file) : file_(file) {
  const auto fail = [&](const std::string& why) { throw FileError(file.string() + ": " + why); };
  payload_ = std::make_unique<ChecksummedFile>(file, kMagic, kCheckpointFormatVersion, "vitcpp checkpoint");
  // LibTorch reports damaged archives with c10::Error, and damaged type descriptions inside them
  // with the TorchScript parser's own std::exception types.
  try {
    archive_.load_from(
        [this](uint64_t position, void* into, size_t size) { return payload_->read(position, into, size); },
        [this] { return static_cast<size_t>(payload_->payload_size()); });
  } catch (const std::exception&) {
    fail("not a readable vitcpp checkpoint (damaged archive)");
  }
  c10::IValue value;
  try {
    archive_.read("config", value);
    config_yaml_ = value.toStringRef();
    archive_.read("class_names", value);
    for (const auto& name : value.toListRef()) class_names_.push_back(name.toStringRef());
    if (archive_.try_read("category_ids", value)) category_ids_ = value.toIntVector();
    archive_.read("epoch", value);
    state_.epoch = value.toInt();
    archive_.read("batch_in_epoch", value);
    state_.batch_in_epoch = value.toInt();
    archive_.read("step", value);
    state_.step = value.toInt();
    archive_.read("best_top1", value);
    state_.best_top1 = value.toDouble();
    if (archive_.try_read("teacher", value)) teacher_fingerprint_ = value.toStringRef();
  } catch (const c10::Error& e) {
    fail(std::string("checkpoint metadata is incomplete: ") + e.what_without_backtrace());
  } catch (const std::exception& e) {
    fail(std::string("checkpoint metadata is unreadable: ") + e.what());
  }
  torch::serialize::InputArchive ema;
  has_ema_ = archive_.try_read("ema", ema);
}

void CheckpointReader::load_model(models::ImageModel& model, bool ema) {
  if (ema && !has_ema_) throw FileError(file_.string() + ": checkpoint holds no EMA weights");
  const auto fail = [&](const std::string& why) {
    throw FileError(file_.string() + ": weights do not fit the model of its config: " + why);
  };
  // LibTorch's loader replaces a tensor of another shape without complaint; compare afterwards.
  const auto expected = tensor_shapes(*model);
  torch::serialize::InputArchive weights;
  try {
    archive_.read(ema ? "ema" : "model", weights);
    model->load(weights);
  } catch (const c10::Error& e) {
    fail(e.what_without_backtrace());
  } catch (const std::exception& e) {
    fail(e.what());
  }
  for (const auto& [name, shape] : tensor_shapes(*model)) {
    if (shape != expected.at(name)) {
      fail(fmt::format("{} is [{}] in the checkpoint but [{}] in the model", name, fmt::join(shape, ", "),
                       fmt::join(expected.at(name), ", ")));
    }
  }
  // LibTorch's loader also ignores tensors the model has no place for: every one must be used.
  std::map<std::string, torch::Tensor> stored;
  collect_tensors(weights, "", stored);
  std::set<std::string> unused;
  for (const auto& [name, tensor] : stored) unused.insert(name);
  for (const auto& [name, shape] : expected) unused.erase(name);
  if (!unused.empty()) {
    fail(fmt::format("it holds {} tensors the model has no place for ({}{})", unused.size(), *unused.begin(),
                     unused.size() > 1 ? ", ..." : ""));
  }
}

CheckpointReader::SharedWeights CheckpointReader::load_shared_weights(models::ImageModel& model) {
  std::map<std::string, torch::Tensor> stored;
  try {
    torch::serialize::InputArchive weights;
    archive_.read("model", weights);
    collect_tensors(weights, "", stored);
  } catch (const c10::Error& e) {
    throw FileError(file_.string() + ": model weights are unreadable: " + e.what_without_backtrace());
  }
  SharedWeights shared;
  torch::NoGradGuard no_grad;
  const auto copy = [&](const std::string& name, torch::Tensor& tensor) {
    const auto found = stored.find(name);
    if (found == stored.end()) {
      shared.kept.push_back(name);
      return;
    }
    if (found->second.sizes() != tensor.sizes()) {
      throw FileError(fmt::format("{}: {} is [{}] there but [{}] in the model being trained", file_.string(), name,
                                  fmt::join(found->second.sizes(), ", "), fmt::join(tensor.sizes(), ", ")));
    }
    tensor.copy_(found->second);
    shared.copied.push_back(name);
    stored.erase(found);
  };
  for (auto& item : model->named_parameters()) copy(item.key(), item.value());
  for (auto& item : model->named_buffers()) copy(item.key(), item.value());
  for (const auto& [name, tensor] : stored) shared.unused.push_back(name);
  if (shared.copied.empty()) throw FileError(file_.string() + ": no tensor of its model fits the model being trained");
  return shared;
}

void CheckpointReader::load_optimizer(torch::optim::Optimizer& optimizer) {
  torch::serialize::InputArchive state;
  try {
    archive_.read("optimizer", state);
    load_optimizer_state(state, optimizer);
  } catch (const c10::Error& e) {
    throw FileError(file_.string() + ": optimizer state does not fit: " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw FileError(file_.string() + ": optimizer state is unreadable: " + e.what());
  }
}

void CheckpointReader::load_loss_scaler(LossScaler& scaler) {
  torch::Tensor state;
  try {
    if (archive_.try_read("loss_scaler", state)) scaler.load_state(state);
  } catch (const c10::Error& e) {
    throw FileError(file_.string() + ": loss scaler state is unreadable: " + e.what_without_backtrace());
  }
}

void CheckpointReader::restore_random_state(torch::Device device) {
  torch::Tensor state;
  try {
    if (archive_.try_read("rng_cpu", state)) generator_for(torch::kCPU).set_state(state);
    if (device.is_cuda() && archive_.try_read("rng_cuda", state)) generator_for(device).set_state(state);
  } catch (const c10::Error& e) {
    throw FileError(file_.string() + ": random generator state is unreadable: " + e.what_without_backtrace());
  }
}

std::filesystem::path resolve_checkpoint(const std::filesystem::path& run_dir_or_file) {
  std::error_code error;
  if (std::filesystem::is_directory(run_dir_or_file, error)) return run_dir_or_file / "last.ckpt";
  return run_dir_or_file;
}

CheckpointReader::~CheckpointReader() = default;

}  // namespace vit::app
