#pragma once

#include <string>

namespace vit::app {

extern const char* const kProjectVersion;  // CMake's project version
extern const char* const kGitDescription;  // `git describe --always --dirty --tags` at build time; empty outside git

// What `vit --version` prints: vitcpp's version, LibTorch's, whether CUDA is available, and the
// BLAS library LibTorch's CPU kernels call in this process.
std::string version_text();

}  // namespace vit::app
