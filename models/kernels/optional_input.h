#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

namespace vit::models {

// LibTorch's custom autograd functions take no undefined tensor: an absent one goes in as an empty
// optional (the function's forward takes c10::optional<at::Tensor> there).
inline c10::optional<at::Tensor> optional_input(const at::Tensor& t) {
  return t.defined() ? c10::optional<at::Tensor>(t) : c10::nullopt;
}

}  // namespace vit::models
