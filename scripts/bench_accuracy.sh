#!/usr/bin/env bash
# Time to accuracy: the default config trained by vitcpp and by the Python reference
# (scripts/bench/reference.py --fit: the same model, data, recipe and thread count in eager
# PyTorch), each timed from its start to the end of the first epoch whose Fashion-MNIST test
# top-1 reaches TARGET. vitcpp's runs go on to the end of the schedule for their final accuracy
# (bf16 against fp32); the reference's stop at the target. Runs one after another, never side by
# side. Writes bench/accuracy.json and bench/accuracy.md (also printed). About 1.5 hours on 2 cores.
#
# Environment: RUNS (default "vitcpp:bf16 reference:none vitcpp:none reference:bf16": the
# implementation and train.amp of each run, in order), TARGET (0.90), THREADS (all cores),
# CONFIG (configs/fashion_mnist_vit.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
source scripts/bench/same_blas_kernels.sh

python=/usr/bin/python3
threads=${THREADS:-$(nproc)}
target=${TARGET:-0.90}
config=${CONFIG:-configs/fashion_mnist_vit.yaml}
work=bench/tmp/accuracy
mkdir -p "$work"
results=()

for run in ${RUNS:-vitcpp:bf16 reference:none vitcpp:none reference:bf16}; do
  implementation=${run%%:*} amp=${run#*:}
  dir="$work/$implementation-$amp"
  rm -rf "$dir"
  echo "bench_accuracy: $implementation, train.amp=$amp" >&2
  if [[ "$implementation" == vitcpp ]]; then
    "$python" scripts/bench/time_to_accuracy.py --target "$target" --metrics "$dir/metrics.csv" --log "$dir.log" -- \
      build/vit train --config "$config" --set "train.amp=$amp" --threads "$threads" --output "$dir" >"$dir.json"
  else
    mkdir -p "$dir"
    build/vit bench --config "$config" --mode train --set "train.amp=$amp" --threads "$threads" --warmup 0 --steps 1 \
      --repeats 1 --json >"$dir/spec.json" 2>/dev/null
    "$python" scripts/bench/time_to_accuracy.py --target "$target" --metrics "$dir/metrics.csv" --log "$dir.log" \
      --stop-at-target -- "$python" scripts/bench/reference.py --like "$dir/spec.json" --fit "$config" \
      --metrics "$dir/metrics.csv" >"$dir.json"
  fi
  results+=("$implementation:$amp=$dir.json")
done

"$python" scripts/bench/accuracy_report.py --json bench/accuracy.json --markdown bench/accuracy.md "${results[@]}"
cat bench/accuracy.md
