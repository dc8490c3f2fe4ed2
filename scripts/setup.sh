#!/usr/bin/env bash
# Installs vitcpp's dependencies on Debian bookworm (only the missing ones) and builds Release
# into build/ (binary: build/vit). Safe to run again: it then only rebuilds what changed.
#
# Environment:
#   VIT_TORCH_DIR   a LibTorch tree's share/cmake/Torch (e.g. a CUDA LibTorch 2.x) instead of Debian's
#   VIT_BUILD_TESTS ON (default) or OFF
#   VIT_JOBS        parallel compile jobs (default: nproc)
#   VIT_BUILD       1 (default) or 0: only install the packages
#   VIT_TARGET      what to build (default: all; scripts/demo.sh builds only vit)
#   VIT_PACKAGES    all (default) or build: only what compiling vit needs (the Dockerfile's build stage)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config zlib1g-dev libturbojpeg0-dev
  libtorch-dev libopencv-dev libcli11-dev libspdlog-dev libfmt-dev libyaml-cpp-dev nlohmann-json3-dev
  libgloo-dev
  # Debian's LibTorch calls the system BLAS; the reference BLAS is ~12x slower than OpenBLAS.
  libopenblas0-openmp
  # linked into vit: keeps LibTorch's freed activations instead of page-faulting them in each step
  libtcmalloc-minimal4
)
if [[ "${VIT_PACKAGES:-all}" != build ]]; then
  packages+=(
    libgtest-dev
    dataset-fashion-mnist
    # Python peers of the tests: TorchScript and torch.load, torchvision's models and box ops, TensorBoard's
    # protobuf messages (protoc), ONNX's checker, scipy's linear_sum_assignment; also scripts/export_onnx.py
    python3-torch python3-torchvision python3-yaml python3-numpy protobuf-compiler python3-protobuf python3-onnx
    python3-scipy
    # scripts/sanitize.sh: ASan/UBSan and libFuzzer
    clang libclang-rt-14-dev
  )
fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]} > 0)); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [[ "$(id -u)" -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

[[ "${VIT_BUILD:-1}" == 0 ]] && exit 0

cmake_args=(-S . -B build -DCMAKE_BUILD_TYPE=Release "-DVIT_BUILD_TESTS=${VIT_BUILD_TESTS:-ON}")
[[ -n "${VIT_TORCH_DIR:-}" ]] && cmake_args+=("-DTorch_DIR=${VIT_TORCH_DIR}")
cmake "${cmake_args[@]}"
cmake --build build -j"${VIT_JOBS:-$(nproc)}" --target "${VIT_TARGET:-all}"
echo "setup: built $(pwd)/build/vit"
