#!/usr/bin/env bash
# MAE on Fashion-MNIST with few labels. (1) The pretraining step's throughput against the same MAE
# step in PyTorch eager (scripts/bench/mae_reference.py via reference.py), alternating rounds, bf16
# and fp32. (2) MAE pretraining (configs/fashion_mnist_mae.yaml) on the 60,000 training images
# without their labels, for a budget of PRETRAIN_MINUTES: the epochs are chosen from the measured
# throughput so that the cosine schedule ends when the budget does. (3) For each seed, fine-tuning
# (configs/fashion_mnist_mae_finetune.yaml) on 1,000 labelled images (100 per class,
# scripts/bench/make_label_subset.py) from the MAE encoder, and the same recipe from scratch;
# validation on the 10,000 test images. Writes bench/mae.json, bench/mae.md (also printed),
# bench/mae_accuracy.png (the best fine-tuning run's curves) and bench/mae_reconstruction.png.
#
# Environment: SEEDS ("0 1"), PRETRAIN_MINUTES (30), THREADS (all cores), ROUNDS (3: throughput
# rounds per precision), REUSE_PRETRAINING (1: keep bench/tmp/mae/pretrain from an earlier run),
# SET (extra --set assignments for every fine-tuning run, e.g. "train.epochs=10" for a quick look)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
source scripts/bench/same_blas_kernels.sh

python=/usr/bin/python3
threads=${THREADS:-$(nproc)}
work=bench/tmp/mae
pretrain_config=configs/fashion_mnist_mae.yaml
finetune_config=configs/fashion_mnist_mae_finetune.yaml
mkdir -p "$work"
overrides=()
for assignment in ${SET:-}; do overrides+=(--set "$assignment"); done

# (1) Throughput of the pretraining step, vitcpp and the reference alternating.
for amp in bf16 none; do
  for round in $(seq "${ROUNDS:-3}"); do
    echo "bench_mae: throughput, amp $amp, round $round" >&2
    build/vit bench --config "$pretrain_config" --mode train --set "train.amp=$amp" --threads "$threads" \
      --warmup 5 --steps 20 --repeats 3 --json >"$work/vit-$amp-$round.json"
    "$python" scripts/bench/reference.py --like "$work/vit-$amp-$round.json" >"$work/reference-$amp-$round.json"
  done
done

# (2) Pretraining for the budget.
if [[ "${REUSE_PRETRAINING:-0}" != 1 || ! -f "$work/pretrain/last.ckpt" ]]; then
  epochs=$("$python" - "${PRETRAIN_MINUTES:-30}" "$work"/vit-bf16-*.json <<'PY'
import json, sys
# The best round: on a shared machine the others read low (one round of 2026-12-03's run sized the
# epochs to 20 of the 30 minutes). Loading, evaluation every 5 epochs and checkpoints cost about 15 %.
images_per_s = max(json.load(open(f))["images_per_s_median"] for f in sys.argv[2:]) * 0.85
print(max(1, int(float(sys.argv[1]) * 60 * images_per_s / 60000)))
PY
)
  echo "bench_mae: pretraining for ${PRETRAIN_MINUTES:-30} minutes: $epochs epochs, $threads threads" >&2
  rm -rf "$work/pretrain"
  start=$(date +%s)
  build/vit train --config "$pretrain_config" --threads "$threads" --set "train.epochs=$epochs" \
    --output "$work/pretrain" 2>"$work/pretrain.log"
  echo "{\"epochs\": $epochs, \"seconds\": $(($(date +%s) - start))}" >"$work/pretrain.json"
fi

# (3) Fine-tuning on 1,000 labels, from the encoder and from scratch.
"$python" scripts/bench/make_label_subset.py --output "$work/labels1000" --per-class 100 --seed 0 >&2
runs=()
for seed in ${SEEDS:-0 1}; do
  for mode in mae scratch; do
    dir="$work/$mode-$seed"
    rm -rf "$dir"
    start_from=()
    if [[ "$mode" == mae ]]; then start_from=(--set "model.pretrained=$work/pretrain/last.ckpt"); fi
    echo "bench_mae: fine-tuning ($mode), seed $seed, $threads threads" >&2
    build/vit train --config "$finetune_config" --seed "$seed" --threads "$threads" \
      --set "data.train.path=$work/labels1000" "${start_from[@]}" "${overrides[@]}" --output "$dir" 2>"$dir.log"
    runs+=("$mode:$seed=$dir")
  done
done

"$python" scripts/bench/mae_report.py --work "$work" --threads "$threads" --set "${SET:-}" \
  --json bench/mae.json --png bench/mae_accuracy.png --reconstruction bench/mae_reconstruction.png \
  "${runs[@]}" >bench/mae.md
cat bench/mae.md
