#!/usr/bin/env bash
# Swin on Fashion-MNIST next to the ViT at the same time budget: trains CONFIG (default
# configs/fashion_mnist_swin.yaml) and the default ViT config (configs/fashion_mnist_vit.yaml,
# VIT_SET for other epochs), one after the other on all cores, and reports each run's wall time,
# final and best test top-1 and curve against the 30-minute budget. The throughput of
# swin_tiny_patch4_window7_224 against torchvision's swin_t comes from scripts/bench.sh (ONLY=swin
# runs just those cases); its latest results in bench/tmp/suite are added when present.
# Writes bench/swin.json and bench/swin.md (also printed).
#
# Environment: SEEDS ("0"), THREADS (all cores), SWIN_SET / VIT_SET (extra --set assignments),
# TRAIN ("swin vit": the runs to train; the others are reused from bench/tmp/swin)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null

python=/usr/bin/python3
threads=${THREADS:-$(nproc)}
config=${CONFIG:-configs/fashion_mnist_swin.yaml}
vit_config=configs/fashion_mnist_vit.yaml
work=bench/tmp/swin
mkdir -p "$work"

train() {  # name config seed assignments...
  local name=$1 run_config=$2 seed=$3
  shift 3
  local overrides=() assignment
  for assignment in "$@"; do overrides+=(--set "$assignment"); done
  local dir="$work/$name-$seed"
  rm -rf "$dir"
  echo "bench_swin: $name, seed $seed, $threads threads" >&2
  local start end
  start=$(date +%s)
  build/vit train --config "$run_config" --seed "$seed" --threads "$threads" "${overrides[@]}" --output "$dir" \
    2>"$dir.log"
  end=$(date +%s)
  echo "{\"wall_seconds\": $((end - start))}" >"$dir/wall.json"
  runs+=("$name:$seed:$run_config=$dir")
}

runs=()
for seed in ${SEEDS:-0}; do
  for name in swin vit; do
    if [[ " ${TRAIN:-swin vit} " == *" $name "* ]]; then
      [[ $name == swin ]] && run_config=$config extra=${SWIN_SET:-} || run_config=$vit_config extra=${VIT_SET:-}
      # shellcheck disable=SC2086
      train "$name" "$run_config" "$seed" $extra
    else
      [[ $name == swin ]] && run_config=$config || run_config=$vit_config
      runs+=("$name:$seed:$run_config=$work/$name-$seed")
    fi
  done
done

"$python" scripts/bench/swin_report.py --json bench/swin.json --throughput bench/tmp/suite/results.jsonl \
  "${runs[@]}" >bench/swin.md
cat bench/swin.md
