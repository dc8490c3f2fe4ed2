#!/usr/bin/env bash
# The benchmark suite: vitcpp against a plain PyTorch eager reference (scripts/bench/reference.py)
# on the same model, step and thread count, measured side by side in this run. Each figure is
# the median of REPEATS rounds, vitcpp and the reference alternating, each after untimed warm-up
# steps. Writes bench/results.json and bench/results.md (also printed).
#
#   1. training-step throughput (AdamW): the default Fashion-MNIST model (17 tokens) and the same
#      model on 4-pixel patches (50 tokens) at batch 128, ViT-Ti/16 at 224 px, batch 32, ViT-S/16 at
#      224 px, batch 16, a CIFAR-size ViT (32 px RGB on 4-pixel patches: 65 tokens, dim 256, depth 8)
#      at batch 128 (the last two: a lead on models the work was not tuned on), DeiT-Ti
#      (distilled) at batch 32, the model and step of the CIFAR-10 recipe (configs/cifar10_vit.yaml:
#      vit_tiny_patch4_32 with stochastic depth 0.1, which the other cases leave off) at batch 128,
#      the MAE step of configs/fashion_mnist_mae.yaml at batch 128, and
#      Swin-T (swin_tiny_patch4_window7_224 against torchvision's swin_t) at batch 16, and the DETR
#      step of `vit data synth-detection`'s config (detr_shapes_64 against detr_reference.py, two
#      random boxes per image) at batch 32, in fp32 and bf16 autocast
#   2. evaluation throughput of the ViTs and the Swin
#   3. exported TorchScript: batch-1 latency and batch-64 throughput (fp32)
#   4. loader throughput of the default Fashion-MNIST pipeline
#   5. peak resident memory of a one-epoch run of the default config
#   6. the bf16 matrix-product peak of the cores (scripts/bench/gemm_peak.py: PyTorch, same threads,
#      the fastest of oneDNN's bf16 products and the fp32 products of the same values over a ViT's
#      layer shapes and 2048^3), measured
#      in each round of ViT-Ti/16's training and merged like the other figures, against which
#      ViT-Ti/16's bf16 training FLOP/s are reported
#
# Environment: THREADS (all cores), REPEATS (5 rounds), QUICK=1 (fewer steps, for a smoke run),
# ONLY=NAME (just the cases whose model name contains NAME, e.g. swin, into
# bench/tmp/suite/results.jsonl; no loader, memory or report)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
source scripts/bench/same_blas_kernels.sh

python=/usr/bin/python3  # Debian's interpreter, where python3-torch lives
threads=${THREADS:-$(nproc)}
repeats=${REPEATS:-5}
work=bench/tmp/suite
mkdir -p "$work" bench
results="$work/results.jsonl"
: >"$results"

default_config=configs/fashion_mnist_vit.yaml
# case_config NAME MODEL TRAIN: a case's config (two YAML flow mappings) in the work folder; prints its path.
case_config() {
  printf 'model: %s\ntrain: %s\n' "$2" "$3" >"$work/$1.yaml"
  echo "$work/$1.yaml"
}
# The recipe of the 10-class cases at 224 px and of the CIFAR-size ViT.
adamw_recipe="{optimizer: adamw, lr: 1.0e-3, weight_decay: 0.05, grad_clip: 1.0, label_smoothing: 0.1}"
tiny_config=$(case_config vit_tiny "{preset: vit_tiny_patch16_224, num_classes: 10}" "$adamw_recipe")
tokens50_config=$(case_config vit_50_tokens \
  "{image_size: 28, patch_size: 4, in_chans: 1, num_classes: 10, dim: 128, depth: 6, heads: 4, mlp_ratio: 2.0, pool: mean}" \
  "{optimizer: adamw, lr: 2.0e-3, weight_decay: 0.05, grad_clip: 1.0, label_smoothing: 0.05}")
small_config=$(case_config vit_small "{preset: vit_small_patch16_224, num_classes: 10}" "$adamw_recipe")
cifar_config=$(case_config vit_cifar_65_tokens \
  "{image_size: 32, patch_size: 4, in_chans: 3, num_classes: 10, dim: 256, depth: 8, heads: 8, mlp_ratio: 4.0, pool: cls}" \
  "$adamw_recipe")
deit_config=$(case_config deit_tiny "{preset: deit_tiny_distilled_patch16_224, num_classes: 10}" "$adamw_recipe")
mae_config=configs/fashion_mnist_mae.yaml
detr_config=$(case_config detr_shapes "{preset: detr_shapes_64}" \
  "{optimizer: adamw, lr: 5.0e-4, weight_decay: 1.0e-4, grad_clip: 0.1}")
cifar_recipe_config=$(case_config cifar10_recipe "{preset: vit_tiny_patch4_32, drop_path: 0.1}" \
  "{optimizer: adamw, lr: 1.0e-3, weight_decay: 0.05, grad_clip: 1.0, label_smoothing: 0.1}")
swin_config=$(case_config swin_tiny "{preset: swin_tiny_patch4_window7_224, num_classes: 10}" "$adamw_recipe")

# measure name config mode batch steps amp...
# Within each round, vitcpp and the reference alternate, one timed repeat each, for every amp in
# turn, so that all sides and precisions of a case see the same phases of a machine whose speed
# drifts (the bf16 target compares vitcpp in bf16 with the reference in fp32); each side's figure
# is the median over the rounds.
measure() {
  local name=$1 config=$2 mode=$3 batch=$4 steps=$5
  shift 5
  [[ -n "${QUICK:-}" ]] && steps=2
  [[ -n "${ONLY:-}" && "$name" != *"$ONLY"* ]] && return
  echo "bench: $name $mode batch $batch amp $*" >&2
  local amp round case peaks=()
  for round in $(seq "$repeats"); do
    for amp in "$@"; do
      case="$work/$name-$mode-$amp"
      build/vit bench --config "$config" --mode "$mode" --batch-size "$batch" --set "train.amp=$amp" \
        --threads "$threads" --warmup 2 --steps "$steps" --repeats 1 --json >"$case.$round.json"
      "$python" scripts/bench/reference.py --like "$case.$round.json" >"$case.$round.reference.json"
    done
    # The peak that ViT-Ti/16's training FLOP/s are a share of, measured in each of its rounds, so
    # that both sides of the share see the same phases of the machine.
    if [[ "$name" == vit_tiny_patch16_224 && "$mode" == train ]]; then
      "$python" scripts/bench/gemm_peak.py "$threads" >"$work/peak.$round.json"
      peaks+=("$work/peak.$round.json")
    fi
  done
  if [[ ${#peaks[@]} -gt 0 ]]; then
    "$python" scripts/bench/gemm_peak.py --merge "${peaks[@]}" >"$work/peak.json"
  fi
  for amp in "$@"; do
    case="$work/$name-$mode-$amp"
    local ours=() theirs=()
    for round in $(seq "$repeats"); do
      ours+=("$case.$round.json")
      theirs+=("$case.$round.reference.json")
    done
    "$python" scripts/bench/merge_rounds.py "${ours[@]}" >"$case.json"
    "$python" scripts/bench/merge_rounds.py "${theirs[@]}" >"$case.reference.json"
    "$python" -c 'import json, sys
ours, theirs = (json.load(open(f)) for f in sys.argv[1:3])
print(json.dumps({"case": sys.argv[3], "vitcpp": ours, "reference": theirs}))' \
      "$case.json" "$case.reference.json" "$name" >>"$results"
  done
}

measure fashion_mnist "$default_config" train 128 20 none bf16
measure fashion_mnist "$default_config" eval 128 20 none bf16
measure vit_50_tokens "$tokens50_config" train 128 10 none bf16
measure vit_50_tokens "$tokens50_config" eval 128 10 none bf16
measure vit_tiny_patch16_224 "$tiny_config" train 32 3 none bf16
measure vit_tiny_patch16_224 "$tiny_config" eval 32 3 none bf16
measure vit_small_patch16_224 "$small_config" train 16 3 none bf16
measure vit_small_patch16_224 "$small_config" eval 32 3 none bf16
measure vit_cifar_65_tokens "$cifar_config" train 128 5 none bf16
measure vit_cifar_65_tokens "$cifar_config" eval 128 5 none bf16
measure deit_tiny_distilled_patch16_224 "$deit_config" train 32 3 none bf16
measure vit_tiny_patch4_32_drop_path "$cifar_recipe_config" train 128 5 none bf16
measure mae_vit_fashion_patch4 "$mae_config" train 128 10 none bf16
measure swin_tiny_patch4_window7_224 "$swin_config" train 16 3 none bf16
measure swin_tiny_patch4_window7_224 "$swin_config" eval 32 3 none bf16
measure detr_shapes_64 "$detr_config" train 32 10 none bf16
measure fashion_mnist "$default_config" inference 64 20 none
measure vit_tiny_patch16_224 "$tiny_config" inference 64 3 none

if [[ -n "${ONLY:-}" ]]; then
  echo "bench: the cases of $ONLY are in $results (bench/ is left as it is)" >&2
  exit 0
fi

echo "bench: loader of the default Fashion-MNIST pipeline" >&2
build/vit data bench --config "$default_config" --batch-size 128 --batches 200 --json >"$work/loader.json"

echo "bench: peak memory of a one-epoch run of the default config" >&2
rm -rf "$work/one_epoch"
"$python" - "$work/one_epoch" "$threads" >"$work/memory.json" <<'PY'
import json, resource, subprocess, sys
run_dir, threads = sys.argv[1], sys.argv[2]
subprocess.run(["build/vit", "train", "--set", "train.epochs=1", "--threads", threads, "--output", run_dir],
               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0}))
PY

echo "bench: ViT-Ti/16's forward cost" >&2
build/vit info --config "$tiny_config" --json >"$work/vit_tiny_info.json"

"$python" scripts/bench/report.py --results "$results" --loader "$work/loader.json" --memory "$work/memory.json" \
  --peak "$work/peak.json" --tiny-info "$work/vit_tiny_info.json" --json bench/results.json --markdown bench/results.md
cat bench/results.md
