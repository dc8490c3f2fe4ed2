#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

namespace vit::models {

// LibTorch's autocast state for one device type, across the API change of LibTorch 2.4 (which
// made the state per device type; earlier releases have one flag for CUDA and one for the CPU).
// The model's own kernels read it to stand aside under autocast; the app's AutocastGuard sets it.
bool autocast_enabled(c10::DeviceType type);
void set_autocast_enabled(c10::DeviceType type, bool on);
c10::ScalarType autocast_dtype(c10::DeviceType type);
void set_autocast_dtype(c10::DeviceType type, c10::ScalarType dtype);

// The dtype a linear layer reading x computes in: autocast's where it is on for x's device, else x's.
c10::ScalarType linear_input_dtype(const at::Tensor& x);

}  // namespace vit::models
