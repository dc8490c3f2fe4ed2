#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite; then the sanitizer build of
# the input-parsing tests and 30 s of each fuzzer (scripts/sanitize.sh; VIT_SANITIZE=0 skips it).
# Between the two, the GPU check's dry run on the CPU (scripts/gpu_check.sh --cpu-only, ~1 min).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
(cd build && ctest --output-on-failure -j"$(nproc)")
scripts/gpu_check.sh --cpu-only
if [[ "${VIT_SANITIZE:-1}" != 0 ]]; then
  scripts/sanitize.sh
fi
