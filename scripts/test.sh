#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite; then the sanitizer build of
# the input-parsing tests and 30 s of each fuzzer (scripts/sanitize.sh; VIT_SANITIZE=0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
(cd build && ctest --output-on-failure -j"$(nproc)")
if [[ "${VIT_SANITIZE:-1}" != 0 ]]; then
  scripts/sanitize.sh
fi
