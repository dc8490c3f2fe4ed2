#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace vit::app {

// Where a CPU workload's time goes, operator by operator: LibTorch's profiler around some calls
// of a step, each operator's self time (its own, less the operators it calls) summed over the
// threads that ran it, so that a step cut into slices on several cores reads in thread-milliseconds.
// The matrix products (mm, addmm, bmm) are kept apart by input shapes, with their floating-point
// operations; every other operator is one row.
struct OperatorTime {
  std::string name;
  std::string shapes;  // a product's input shapes, e.g. "[1576, 384] [384, 1536]"; else empty
  double calls_per_step = 0;
  double ms_per_step = 0;     // self time, summed over threads
  double gflop_per_step = 0;  // a product's 2·m·n·k per call (batched: times the batch); else 0
};

struct OperatorProfile {
  int64_t steps = 0;
  std::vector<OperatorTime> operators;  // largest self time first

  double ms_per_step() const;          // all operators' self time
  double product_ms_per_step() const;  // the matrix products'
  double product_gflop_per_step() const;
};

// Runs `step` `steps` times under the profiler (CPU operators) and adds up what it recorded.
OperatorProfile profile_operators(const std::function<void()>& step, int64_t steps);

// 2·m·n·k of a matrix product from its input shapes, times the batch for bmm; 0 for any other
// operator or shapes that are not a product's.
double product_flops(const std::string& name, const std::vector<std::vector<int64_t>>& shapes);

}  // namespace vit::app
