#!/usr/bin/env bash
# DETR on the generated shapes task: writes the task (`vit data synth-detection`, SHAPES_SEED),
# trains DIR/detection.yaml on all cores, evaluates the best checkpoint (`vit eval --json`) and
# reports mAP@[.5:.95], AP50 and AP75 on the validation split, the wall time against the 30-minute
# budget and the curve (mAP and AP50 after every epoch, with the elapsed minutes).
# Writes bench/detection.json and bench/detection.md (also printed).
#
# Environment: SEEDS ("0": training seeds), SHAPES_SEED (0), THREADS (all cores), DETECTION_SET
# (extra --set assignments, e.g. "model.anchor_queries=false" for the paper's free queries)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null

python=/usr/bin/python3
threads=${THREADS:-$(nproc)}
work=bench/tmp/detection
shapes=$work/shapes
mkdir -p "$work"
rm -rf "$shapes"
build/vit data synth-detection --output "$shapes" --seed "${SHAPES_SEED:-0}" >&2

runs=()
for seed in ${SEEDS:-0}; do
  overrides=()
  for assignment in ${DETECTION_SET:-}; do overrides+=(--set "$assignment"); done
  dir="$work/run-$seed"
  rm -rf "$dir"
  echo "bench_detection: seed $seed, $threads threads" >&2
  start=$(date +%s)
  build/vit train --config "$shapes/detection.yaml" --seed "$seed" --threads "$threads" "${overrides[@]}" \
    --output "$dir" 2>"$dir.log"
  end=$(date +%s)
  echo "{\"wall_seconds\": $((end - start))}" >"$dir/wall.json"
  build/vit eval --checkpoint "$dir/best.ckpt" --threads "$threads" --json "$dir/eval.json" >&2
  runs+=("$seed=$dir")
done

"$python" scripts/bench/detection_report.py --json bench/detection.json --config "$shapes/detection.yaml" \
  "${runs[@]}" >bench/detection.md
cat bench/detection.md
