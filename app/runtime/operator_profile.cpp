#include "app/runtime/operator_profile.h"

#include <c10/util/ArrayRef.h>
#include <torch/csrc/autograd/profiler_kineto.h>

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>
#include <utility>

namespace vit::app {
namespace {

// vit::linear_gelu and vit::amx_linear (models/kernels/) record their operands as mm's: [m, k], [k, n].
bool is_product(const std::string& name) {
  return name == "aten::mm" || name == "aten::addmm" || name == "aten::bmm" || name == "vit::linear_gelu" ||
         name == "vit::amx_linear";
}

// An event's start and duration in nanoseconds: LibTorch 1.13's events count microseconds, 2.x's nanoseconds.
template <typename Event>
auto start_and_duration_ns(const Event& event) -> decltype(event.startNs(), std::pair<uint64_t, uint64_t>()) {
  return {event.startNs(), event.durationNs()};
}
template <typename Event, typename... Older>
std::pair<uint64_t, uint64_t> start_and_duration_ns(const Event& event, Older...) {
  return {event.startUs() * 1000, event.durationUs() * 1000};
}

std::string shapes_text(const std::vector<std::vector<int64_t>>& shapes) {
  std::string text;
  for (const auto& shape : shapes) {
    if (shape.empty()) continue;  // a scalar's, or an argument that is no tensor
    if (!text.empty()) text += ' ';
    text += '[';
    for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
    text += ']';
  }
  return text;
}

struct Span {
  uint64_t begin_ns, end_ns;
  std::string key;
};

}  // namespace

double product_flops(const std::string& name, const std::vector<std::vector<int64_t>>& shapes) {
  // mm(a [m, k], b [k, n]); addmm(bias, a, b); bmm(a [B, m, k], b [B, k, n]).
  const size_t first = name == "aten::addmm" ? 1 : 0;
  const size_t rank = name == "aten::bmm" ? 3 : 2;
  if (!is_product(name) || shapes.size() < first + 2) return 0.0;
  const auto& a = shapes[first];
  const auto& b = shapes[first + 1];
  if (a.size() != rank || b.size() != rank || a[rank - 1] != b[rank - 2]) return 0.0;
  const double batch = rank == 3 ? static_cast<double>(a[0]) : 1.0;
  return 2.0 * batch * static_cast<double>(a[rank - 2]) * static_cast<double>(a[rank - 1]) *
         static_cast<double>(b[rank - 1]);
}

double OperatorProfile::ms_per_step() const {
  double sum = 0;
  for (const auto& op : operators) sum += op.ms_per_step;
  return sum;
}

double OperatorProfile::product_ms_per_step() const {
  double sum = 0;
  for (const auto& op : operators) sum += is_product(op.name) ? op.ms_per_step : 0.0;
  return sum;
}

double OperatorProfile::product_gflop_per_step() const {
  double sum = 0;
  for (const auto& op : operators) sum += op.gflop_per_step;
  return sum;
}

OperatorProfile profile_operators(const std::function<void()>& step, int64_t steps) {
  if (steps < 1) throw std::invalid_argument("profile_operators: steps must be at least 1");
  namespace profiler = torch::autograd::profiler;
  using torch::profiler::impl::ActivityType;
  const torch::profiler::impl::ProfilerConfig config(torch::profiler::impl::ProfilerState::KINETO,
                                                     /*report_input_shapes=*/true);
  const std::set<ActivityType> activities{ActivityType::CPU};
  profiler::prepareProfiler(config, activities);
  profiler::enableProfiler(config, activities);
  try {
    for (int64_t i = 0; i < steps; ++i) step();
  } catch (...) {
    (void)profiler::disableProfiler();
    throw;
  }
  const auto result = profiler::disableProfiler();

  // Each thread's operators nest in time; an operator's self time is its span less its children's.
  std::map<uint64_t, std::vector<Span>> spans_by_thread;
  std::map<std::string, OperatorTime> rows;
  for (const auto& event : result->events()) {
    const auto name = event.name();
    std::string shapes;
    double flops = 0.0;
    if (is_product(name) && event.hasShapes()) {
      const auto event_shapes = event.shapes();
      const std::vector<std::vector<int64_t>> listed(event_shapes.begin(), event_shapes.end());
      shapes = shapes_text(listed);
      flops = product_flops(name, listed);
    }
    const auto key = shapes.empty() ? name : name + ' ' + shapes;
    auto& row = rows[key];
    row.name = name;
    row.shapes = shapes;
    row.calls_per_step += 1.0;
    row.gflop_per_step += flops / 1e9;
    const auto [begin, duration] = start_and_duration_ns(event);
    spans_by_thread[event.startThreadId()].push_back({begin, begin + duration, key});
  }
  for (auto& [thread, spans] : spans_by_thread) {
    std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
      return a.begin_ns != b.begin_ns ? a.begin_ns < b.begin_ns : a.end_ns > b.end_ns;
    });
    std::vector<const Span*> open;
    for (const auto& span : spans) {
      while (!open.empty() && open.back()->end_ns <= span.begin_ns) open.pop_back();
      const double ms = static_cast<double>(span.end_ns - span.begin_ns) / 1e6;
      rows[span.key].ms_per_step += ms;
      if (!open.empty()) rows[open.back()->key].ms_per_step -= ms;
      open.push_back(&span);
    }
  }
  OperatorProfile profile{steps, {}};
  for (auto& [key, row] : rows) {
    const auto per_step = 1.0 / static_cast<double>(steps);
    row.calls_per_step *= per_step;
    row.ms_per_step *= per_step;
    row.gflop_per_step *= per_step;
    profile.operators.push_back(std::move(row));
  }
  std::sort(profile.operators.begin(), profile.operators.end(),
            [](const OperatorTime& a, const OperatorTime& b) { return a.ms_per_step > b.ms_per_step; });
  return profile;
}

}  // namespace vit::app
