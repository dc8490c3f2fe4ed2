#!/usr/bin/env bash
# DeiT distillation on Fashion-MNIST. Trains a small CNN teacher in plain PyTorch
# (scripts/bench/distill_teacher.py; its test top-1 and time reported), exported with
# torch.jit.trace, then the same student (CONFIG, default configs/fashion_mnist_deit.yaml) with the
# teacher and without it (train.distillation.type none: the same recipe otherwise), for each seed.
# Writes bench/distill.json, bench/distill.md (also printed) and bench/distill_accuracy.png (the
# best distilled run's curves).
#
# Environment: SEEDS ("0 1"), TEACHER_EPOCHS (15), REUSE_TEACHER (1: keep bench/tmp/distill's
# teacher.pt and teacher.json from an earlier run of this script), THREADS (all cores), JOBS (1: one run at a time;
# 2: two students side by side with THREADS / 2 threads each, which the report states),
# SET (extra --set assignments for every student, e.g. "train.epochs=10" for a quick look),
# PLAIN_SET (extra --set assignments for the student without a teacher, e.g. more epochs so that
# it trains as long as the distilled student and its teacher together)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
source scripts/bench/same_blas_kernels.sh

python=/usr/bin/python3
threads=${THREADS:-$(nproc)}
jobs=${JOBS:-1}
config=${CONFIG:-configs/fashion_mnist_deit.yaml}
work=bench/tmp/distill
mkdir -p "$work"
overrides=()
for assignment in ${SET:-}; do overrides+=(--set "$assignment"); done
plain_overrides=()
for assignment in ${PLAIN_SET:-}; do plain_overrides+=(--set "$assignment"); done

if [[ "${REUSE_TEACHER:-0}" != 1 || ! -f "$work/teacher.json" ]]; then
  echo "bench_distill: teacher (${TEACHER_EPOCHS:-15} epochs, $threads threads)" >&2
  "$python" scripts/bench/distill_teacher.py --output "$work/teacher.pt" --epochs "${TEACHER_EPOCHS:-15}" --seed 0 \
    --threads "$threads" >"$work/teacher.json"
fi

student_threads=$((threads / jobs > 0 ? threads / jobs : 1))
runs=()
pids=()
for seed in ${SEEDS:-0 1}; do
  for mode in distilled plain; do
    dir="$work/$mode-$seed"
    rm -rf "$dir"
    if [[ "$mode" == distilled ]]; then
      teacher=(--set "train.distillation.teacher=$work/teacher.pt")
    else
      teacher=(--set "train.distillation.type=none" --set "train.distillation.teacher=''" "${plain_overrides[@]}")
    fi
    echo "bench_distill: $mode student, seed $seed, $student_threads threads" >&2
    build/vit train --config "$config" --seed "$seed" --threads "$student_threads" "${teacher[@]}" \
      "${overrides[@]}" --output "$dir" 2>"$dir.log" &
    pids+=($!)
    runs+=("$mode:$seed=$dir")
    if ((${#pids[@]} >= jobs)); then
      for pid in "${pids[@]}"; do wait "$pid"; done
      pids=()
    fi
  done
done
for pid in "${pids[@]}"; do wait "$pid"; done

"$python" scripts/bench/distill_report.py --teacher "$work/teacher.json" --config "$config" --jobs "$jobs" \
  --threads "$student_threads" --set "${SET:-}" --plain-set "${PLAIN_SET:-}" --json bench/distill.json --png bench/distill_accuracy.png \
  "${runs[@]}" >bench/distill.md
cat bench/distill.md
