#include "app/distributed/distributed.h"

// c10d declares a backend's process group only where the build says LibTorch has it: Gloo in
// every LibTorch (Torch's CMake usually says so already), NCCL in CUDA ones.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#if defined(VIT_WITH_NCCL) && !defined(USE_C10D_NCCL)
#define USE_C10D_NCCL
#endif

#include "app/errors.h"

#include <c10/util/Exception.h>
#include <fmt/format.h>
#include <torch/version.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef VIT_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cstdlib>
#include <limits>
#include <mutex>

namespace vit::app {
namespace {

// LibTorch 2.0 split the process group into a front and per-device backends; the collectives
// this file uses have the same signatures on both.
#if TORCH_VERSION_MAJOR >= 2
using Backend = c10d::Backend;
#else
using Backend = c10d::ProcessGroup;
#endif

int64_t read_variable(const char* name, int64_t fallback, int64_t low, int64_t high) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(text, &end, 10);
  if (errno != 0 || *end != '\0' || value < low || value > high) {
    throw ConfigError(
        fmt::format("environment variable {}: expected an integer in [{}, {}], got '{}'", name, low, high, text));
  }
  return value;
}

}  // namespace

RankEnvironment read_rank_environment() {
  RankEnvironment environment;
  environment.world_size = read_variable("WORLD_SIZE", 1, 1, 1 << 20);
  environment.rank = read_variable("RANK", 0, 0, environment.world_size - 1);
  environment.local_rank = read_variable("LOCAL_RANK", 0, 0, environment.world_size - 1);
  environment.master_port = static_cast<int>(read_variable("MASTER_PORT", environment.master_port, 1, 65535));
  if (const char* address = std::getenv("MASTER_ADDR"); address != nullptr && *address != '\0') {
    environment.master_addr = address;
  } else if (environment.world_size > 1 && std::getenv("RANK") == nullptr) {
    throw ConfigError("environment variable RANK: WORLD_SIZE is " + std::to_string(environment.world_size) +
                      " but RANK is not set (launch with torchrun or vit train --nproc)");
  }
  return environment;
}

struct DataParallel::Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<Backend> backend;
  std::string name;
  std::chrono::milliseconds timeout;
  int64_t rank;

  // Runs one c10d call, turning its failures into a DistributedError that says what to look at.
  template <typename Call>
  auto guarded(const std::string& what, Call&& call) {
    try {
      return call();
    } catch (const c10::Error& error) {
      throw failure(what, error.what_without_backtrace());
    } catch (const std::exception& error) {
      throw failure(what, error.what());
    }
  }
  DistributedError failure(const std::string& what, const std::string& detail) const {
    return DistributedError(fmt::format(
        "rank {}: {} failed: {} (another rank stopped, or none answered within train.distributed.timeout_s = {} s)",
        rank, what, detail, timeout.count() / 1000));
  }
  void wait(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what) {
    guarded(what, [&] { return work->wait(); });
  }
};

// Gradients of consecutive parameters (in reverse registration order, roughly the order backward
// produces them) share one flat buffer; a bucket's all-reduce starts as soon as its last gradient
// arrives and every earlier bucket has started, so every rank issues the collectives in the same
// order while backward still runs.
struct DataParallel::Buckets {
  struct Slot {
    size_t bucket = 0;
    int64_t offset = 0;
    bool ready = false;
  };
  struct Bucket {
    torch::Tensor buffer;
    std::vector<size_t> parameters;
    size_t pending = 0;
    c10::intrusive_ptr<c10d::Work> work;
  };

  std::vector<torch::Tensor> parameters;
  std::vector<Slot> slots;
  std::vector<Bucket> buckets;
  std::vector<unsigned> hooks;
  double inverse_world = 1.0;
  size_t next_launch = 0;
  bool synchronize = true;
  std::mutex mutex;

  // Writes parameter i's share of the average — what it accumulated in earlier micro-batches
  // (.grad) plus `grad` from this pass when defined, divided by the world size — into its slot,
  // then starts whatever buckets that completes.
  void fill(size_t i, const torch::Tensor& grad, Group& group) {
    torch::NoGradGuard no_grad;
    auto& slot = slots[i];
    auto& bucket = buckets[slot.bucket];
    auto view = bucket.buffer.narrow(0, slot.offset, parameters[i].numel());
    const auto& accumulated = parameters[i].grad();
    if (accumulated.defined() && grad.defined()) {
      torch::add_out(view, accumulated.reshape(-1), grad.reshape(-1));
    } else if (accumulated.defined() || grad.defined()) {
      view.copy_((grad.defined() ? grad : accumulated).reshape(-1));
    } else {
      view.zero_();
    }
    view.mul_(inverse_world);
    slot.ready = true;
    if (--bucket.pending == 0) launch_ready(group);
  }

  // Starts the all-reduce of every complete bucket whose predecessors have all started.
  void launch_ready(Group& group) {
    while (next_launch < buckets.size() && buckets[next_launch].pending == 0) {
      auto& bucket = buckets[next_launch++];
      std::vector<torch::Tensor> tensors{bucket.buffer};
      bucket.work = group.guarded("gradient all-reduce", [&] { return group.backend->allreduce(tensors); });
    }
  }
};

DataParallel::DataParallel(const RankEnvironment& environment, const DistributedConfig& config, torch::Device device)
    : environment_(environment), config_(config) {
  if (environment.world_size == 1) return;
  group_ = std::make_unique<Group>();
  group_->timeout = std::chrono::milliseconds(config.timeout_s * 1000);
  group_->rank = environment.rank;
  const bool nccl = config.backend == DistBackend::Nccl || (config.backend == DistBackend::Auto && device.is_cuda());
  group_->name = nccl ? "nccl" : "gloo";
#ifndef VIT_WITH_NCCL
  if (nccl) {
    throw ConfigError("train.distributed.backend: nccl needs a CUDA LibTorch build with NCCL; this one has gloo only");
  }
#endif
  const auto where = fmt::format("{}:{}", environment.master_addr, environment.master_port);
  group_->guarded("rendezvous at " + where + " (MASTER_ADDR:MASTER_PORT)", [&] {
    c10d::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(environment.master_port);
    // torchrun >= 2.3 may host the store itself and say so; then every rank is a client.
    const char* agent_store = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
    options.isServer = environment.rank == 0 && !(agent_store != nullptr && std::string(agent_store) == "True");
    options.numWorkers = static_cast<std::size_t>(environment.world_size);
    options.waitWorkers = true;
    options.timeout = group_->timeout;
    group_->store = c10::make_intrusive<c10d::TCPStore>(environment.master_addr, options);
#ifdef VIT_WITH_NCCL
    if (nccl) {
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = group_->timeout;
      group_->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(
          group_->store, static_cast<int>(environment.rank), static_cast<int>(environment.world_size), nccl_options);
      return 0;
    }
#endif
    auto gloo_options = c10d::ProcessGroupGloo::Options::create(group_->timeout);
    // PyTorch's convention for picking the network interface on multi-homed nodes.
    const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
    gloo_options->devices.push_back(interface != nullptr && *interface != '\0'
                                        ? c10d::ProcessGroupGloo::createDeviceForInterface(interface)
                                        : c10d::ProcessGroupGloo::createDefaultDevice());
    group_->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(
        group_->store, static_cast<int>(environment.rank), static_cast<int>(environment.world_size), gloo_options);
    return 0;
  });
}

DataParallel::~DataParallel() {
  if (!buckets_) return;
  for (size_t i = 0; i < buckets_->parameters.size(); ++i) buckets_->parameters[i].remove_hook(buckets_->hooks[i]);
}

std::string DataParallel::backend() const { return group_ ? group_->name : "none"; }

void DataParallel::broadcast_from_main(torch::nn::Module& module) {
  if (!group_) return;
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> tensors = module.parameters();
  for (const auto& buffer : module.buffers()) tensors.push_back(buffer);
  std::vector<torch::Tensor> flat_parts;
  for (const auto& tensor : tensors) flat_parts.push_back(tensor.reshape(-1).to(torch::kFloat32));
  std::vector<torch::Tensor> flat{torch::cat(flat_parts)};
  group_->wait(group_->guarded("broadcast of the initial weights", [&] { return group_->backend->broadcast(flat); }),
               "broadcast of the initial weights");
  int64_t offset = 0;
  for (auto& tensor : tensors) {
    tensor.copy_(flat[0].narrow(0, offset, tensor.numel()).view_as(tensor));
    offset += tensor.numel();
  }
}

void DataParallel::all_reduce_sum(torch::Tensor& tensor) {
  if (!group_) return;
  std::vector<torch::Tensor> tensors{tensor};
  group_->wait(group_->guarded("all-reduce", [&] { return group_->backend->allreduce(tensors); }), "all-reduce");
}

DataParallel::StepSummary DataParallel::summarize_step(const torch::Tensor& loss, bool stop_requested) {
  if (!group_) return {loss, stop_requested};
  auto values = torch::stack({loss.to(torch::kFloat64).reshape({}),
                              torch::full({}, stop_requested ? 1.0 : 0.0, loss.options().dtype(torch::kFloat64))});
  all_reduce_sum(values);
  return {values[0] / static_cast<double>(world_size()), values[1].item<double>() > 0.0};
}

void DataParallel::attach_gradient_buckets(const std::vector<torch::Tensor>& parameters) {
  if (!group_) return;
  buckets_ = std::make_unique<Buckets>();
  auto& b = *buckets_;
  b.parameters = parameters;
  b.slots.resize(parameters.size());
  const auto capacity = static_cast<int64_t>(config_.bucket_mb * 1024.0 * 1024.0 / sizeof(float));
  std::vector<int64_t> sizes;
  for (size_t i = parameters.size(); i-- > 0;) {
    const int64_t numel = parameters[i].numel();
    if (b.buckets.empty() || (sizes.back() > 0 && sizes.back() + numel > capacity)) {
      b.buckets.emplace_back();
      sizes.push_back(0);
    }
    b.slots[i] = {b.buckets.size() - 1, sizes.back(), false};
    b.buckets.back().parameters.push_back(i);
    sizes.back() += numel;
  }
  for (size_t k = 0; k < b.buckets.size(); ++k) {
    b.buckets[k].buffer = torch::zeros({sizes[k]}, parameters.front().options().requires_grad(false));
    b.buckets[k].pending = b.buckets[k].parameters.size();
  }
  b.inverse_world = 1.0 / static_cast<double>(world_size());
  for (size_t i = 0; i < parameters.size(); ++i) {
    // The hook sees this pass's gradient before autograd adds it to .grad.
    b.hooks.push_back(b.parameters[i].register_hook([this, i](const torch::Tensor& grad) {
      std::lock_guard<std::mutex> lock(buckets_->mutex);
      if (buckets_->synchronize) buckets_->fill(i, grad, *group_);
    }));
  }
}

void DataParallel::synchronize_next_backward(bool synchronize) {
  if (buckets_) buckets_->synchronize = synchronize;
}

void DataParallel::finish_gradient_sync() {
  if (!buckets_) return;
  auto& b = *buckets_;
  std::lock_guard<std::mutex> lock(b.mutex);
  torch::NoGradGuard no_grad;
  // Parameters that took no part in this pass contribute what they accumulated before (or zero);
  // the last of them completes, and so starts, every remaining bucket.
  for (size_t i = 0; i < b.parameters.size(); ++i) {
    if (!b.slots[i].ready) b.fill(i, torch::Tensor(), *group_);
  }
  for (auto& bucket : b.buckets) {
    group_->wait(bucket.work, "gradient all-reduce");
    bucket.work.reset();
    bucket.pending = bucket.parameters.size();
  }
  for (size_t i = 0; i < b.parameters.size(); ++i) {
    auto& parameter = b.parameters[i];
    auto& slot = b.slots[i];
    const auto averaged = b.buckets[slot.bucket].buffer.narrow(0, slot.offset, parameter.numel()).view_as(parameter);
    if (parameter.grad().defined()) {
      parameter.mutable_grad().copy_(averaged);
    } else {
      parameter.mutable_grad() = averaged.clone();
    }
    slot.ready = false;
  }
  b.next_launch = 0;
}

}  // namespace vit::app
