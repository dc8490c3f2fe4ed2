#pragma once

#include <torch/optim/optimizer.h>

#include <sstream>
#include <string>
#include <type_traits>
#include <utility>

namespace vit::app {

// The key under which torch::optim::Optimizer keeps a parameter's state: the text of its
// TensorImpl's address in LibTorch 1.13, the address itself in later releases.
using OptimizerStateKey =
    typename std::decay_t<decltype(std::declval<const torch::optim::Optimizer&>().state())>::key_type;

// A template so that only the branch of the LibTorch at hand is compiled.
template <typename Key = OptimizerStateKey>
Key optimizer_state_key(const torch::Tensor& parameter) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream text;
    text << parameter.unsafeGetTensorImpl();
    return text.str();
  } else {
    return parameter.unsafeGetTensorImpl();
  }
}

}  // namespace vit::app
