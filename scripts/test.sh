#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite; then the sanitizer build of
# the input-parsing tests and 30 s of each fuzzer (scripts/sanitize.sh; VIT_SANITIZE=0 skips it).
# Between the two, the GPU check's dry run on the CPU (scripts/gpu_check.sh --cpu-only, ~1 min).
# Ends with the seconds each part took.
set -euo pipefail
cd "$(dirname "$0")/.."
timings=()
timed() {  # name command...: runs the command and notes its seconds under the name
  local name=$1 start=$SECONDS
  shift
  "$@"
  timings+=("$name $((SECONDS - start)) s")
}
timed "install and build:" scripts/setup.sh
timed "tests:" bash -c 'cd build && ctest --output-on-failure -j"$(nproc)"'
timed "GPU check's dry run:" scripts/gpu_check.sh --cpu-only
if [[ "${VIT_SANITIZE:-1}" != 0 ]]; then
  timed "sanitizer build, tests and fuzzers:" scripts/sanitize.sh
fi
printf 'test: %s\n' "${timings[@]}" "in all: $SECONDS s"
