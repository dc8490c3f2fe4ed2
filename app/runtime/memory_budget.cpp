#include "app/runtime/memory_budget.h"

#include "app/errors.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace vit::app {
namespace {

constexpr double kMiB = 1024.0 * 1024.0;
constexpr double kGiB = 1024.0 * kMiB;

std::optional<double> read_number(const std::string& file) {
  std::ifstream in(file);
  std::string text;
  if (!(in >> text) || text == "max") return std::nullopt;
  try {
    return std::stod(text);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

double resident_bytes() {
  std::ifstream in("/proc/self/statm");
  double total_pages = 0.0;
  double resident_pages = 0.0;
  if (!(in >> total_pages >> resident_pages)) return 0.0;
  return resident_pages * static_cast<double>(::sysconf(_SC_PAGESIZE));
}

std::optional<double> mem_available() {
  std::ifstream in("/proc/meminfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string name;
    double kib = 0.0;
    if (fields >> name >> kib && name == "MemAvailable:") return kib * 1024.0;
  }
  return std::nullopt;
}

}  // namespace

std::string human_bytes(double bytes) {
  return bytes >= kGiB ? fmt::format("{:.2f} GiB", bytes / kGiB) : fmt::format("{:.1f} MiB", bytes / kMiB);
}

std::string MemoryEstimate::describe() const {
  return fmt::format(
      "{} (process {}, weights and gradients {}, optimizer state {}, EMA {}, loader batches {}, {}activations {})",
      human_bytes(total()), human_bytes(process), human_bytes(weights), human_bytes(optimizer_state), human_bytes(ema),
      human_bytes(loaders), slices > 0.0 ? "batch slices' gradients " + human_bytes(slices) + ", " : "",
      human_bytes(activations));
}

MemoryEstimate estimate_training_memory(const models::ModelComplexity& complexity, const TrainConfig& train,
                                        int64_t rank_batch_size, int64_t slices, double loader_bytes) {
  const double parameter_bytes = static_cast<double>(complexity.parameters) * sizeof(float);
  const double optimizer_slots = train.optimizer == OptimizerKind::AdamW ? 2.0 : (train.momentum > 0.0 ? 1.0 : 0.0);
  MemoryEstimate estimate;
  estimate.process = resident_bytes();
  const double cast_copy = train.amp == AmpMode::None ? 0.0 : 0.5;  // 16-bit weights under autocast
  estimate.weights = parameter_bytes * (2.0 + cast_copy);
  // One slice runs backward() into .grad; several keep a set of gradients each until their sum,
  // and each slice's thread its own autocast cache.
  const auto count = static_cast<double>(slices);
  if (slices > 1) estimate.slices = parameter_bytes * (count + (count - 1.0) * cast_copy);
  estimate.optimizer_state = parameter_bytes * optimizer_slots;
  estimate.ema = train.ema_decay > 0.0 ? parameter_bytes : 0.0;
  estimate.loaders = loader_bytes;
  estimate.per_image = static_cast<double>(complexity.activation_bytes);
  estimate.activations = estimate.per_image * static_cast<double>(rank_batch_size);
  return estimate;
}

int64_t slices_that_fit(const models::ModelComplexity& complexity, const TrainConfig& train, int64_t rank_batch_size,
                        double loader_bytes, int64_t threads, double available) {
  for (int64_t slices = threads; slices >= 1; --slices) {
    if (threads % slices != 0) continue;
    const int64_t run = std::min(slices, rank_batch_size);  // at most one slice per row
    if (estimate_training_memory(complexity, train, rank_batch_size, run, loader_bytes).still_needed() <= available) {
      return slices;
    }
  }
  return threads;
}

std::optional<double> available_memory_bytes() {
  if (const char* forced = std::getenv("VIT_AVAILABLE_MEMORY_MB")) return std::atof(forced) * 1024.0 * 1024.0;
  auto available = mem_available();
  const auto limit = read_number("/sys/fs/cgroup/memory.max");
  const auto used = read_number("/sys/fs/cgroup/memory.current");
  if (limit && used) {
    const double left = std::max(0.0, *limit - *used);
    available = available ? std::min(*available, left) : left;
  }
  if (!available) return std::nullopt;
  const char* local_ranks = std::getenv("LOCAL_WORLD_SIZE");
  const int ranks = local_ranks != nullptr ? std::max(1, std::atoi(local_ranks)) : 1;
  return *available / ranks;
}

void check_training_memory(const MemoryEstimate& estimate, double available, int64_t rank_batch_size) {
  if (estimate.still_needed() <= available) return;
  const double room = available - estimate.held_throughout();
  const bool model_alone = room < estimate.per_image;  // beside one image
  std::vector<std::string> advice;
  const auto fitting = estimate.per_image > 0.0
                           ? static_cast<int64_t>(std::floor((room - estimate.slices) / estimate.per_image))
                           : int64_t{0};
  if (model_alone) {
    advice.push_back("the model alone does not fit: choose a smaller model (model.preset, model.dim, model.depth)");
  } else {
    if (fitting >= 1) advice.push_back(fmt::format("lower train.batch_size (about {} images per rank fit)", fitting));
    if (estimate.slices > 0.0) {
      advice.push_back(fmt::format(
          "cut the batch into fewer slices (train.batch_slices, or train.threads), each holding gradients of its "
          "own: {}",
          human_bytes(estimate.slices)));
    }
  }
  const std::string need = model_alone ? "model: training this model needs"
                           : fitting >= 1 || estimate.slices == 0.0
                               ? fmt::format("train.batch_size: {} images per rank need", rank_batch_size)
                               : "train.batch_slices: the batch slices' gradients need";
  throw ConfigError(fmt::format(
      "{} an estimated {} more memory for training, but {} is available (peak {}); {}, or pass --force to try "
      "anyway",
      need, human_bytes(estimate.still_needed()), human_bytes(available), estimate.describe(),
      advice.size() == 1 ? advice.front() : advice.front() + ", or " + advice.back()));
}

}  // namespace vit::app
