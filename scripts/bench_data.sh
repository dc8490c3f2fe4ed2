#!/usr/bin/env bash
# Loader throughput (images/s) of vitcpp against torchvision's ImageFolder + DataLoader on the
# same generated JPEG ImageFolder, both doing RandomResizedCrop(224) + flip + normalize with the
# same number of workers, measured side by side in this run (median of REPEATS runs each).
# Writes bench/data.json and prints a markdown table.
#
# Environment: WORKERS ("1 2"), BATCHES (20), BATCH_SIZE (64), REPEATS (3), IMAGES_PER_CLASS (100)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null

workers_list=${WORKERS:-"1 2"}
batches=${BATCHES:-20}
batch_size=${BATCH_SIZE:-64}
repeats=${REPEATS:-3}
python=/usr/bin/python3  # Debian's interpreter, where python3-torch and python3-torchvision live

work=bench/tmp/data
folder="$work/jpeg_folder"
if [[ ! -d "$folder" ]]; then
  echo "bench_data: generating a JPEG ImageFolder in $folder" >&2
  "$python" scripts/bench/make_image_folder.py "$folder" --classes 10 --per-class "${IMAGES_PER_CLASS:-100}"
fi
config="$work/imagefolder.yaml"
cat >"$config" <<YAML
model: {preset: vit_base_patch16_224, num_classes: 10}
data:
  train: {source: imagefolder, path: $(pwd)/$folder}
  mean: [0.485, 0.456, 0.406]
  std: [0.229, 0.224, 0.225]
  train_transforms:
    random_resized_crop: {scale: [0.08, 1.0], ratio: [0.75, 1.3333333]}
    hflip: 0.5
YAML

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rate() { "$python" -c 'import json, sys; print(json.load(sys.stdin)["images_per_s"])'; }

mkdir -p bench
rows=()
json="["
for workers in $workers_list; do
  ours=$(for _ in $(seq "$repeats"); do
    build/vit data bench --config "$config" --workers "$workers" --batches "$batches" --batch-size "$batch_size" --json | rate
  done | median)
  theirs=$(for _ in $(seq "$repeats"); do
    "$python" scripts/bench/torchvision_loader.py --root "$folder" --workers "$workers" --batches "$batches" \
      --batch-size "$batch_size" | rate
  done | median)
  ratio=$("$python" -c "print(f'{$ours / $theirs:.2f}')")
  rows+=("| $workers | $(printf '%.0f' "$ours") | $(printf '%.0f' "$theirs") | ${ratio}x |")
  json+="{\"workers\": $workers, \"vitcpp_images_per_s\": $ours, \"torchvision_images_per_s\": $theirs, \"ratio\": $ratio},"
done
json="${json%,}]"
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
echo "{\"benchmark\": \"loader, RandomResizedCrop(224)+flip+normalize, JPEG ImageFolder\", \"cpu\": \"$cpu\", \"cores\": $(nproc), \"batch_size\": $batch_size, \"results\": $json}" >bench/data.json

echo "| workers | vitcpp images/s | torchvision images/s | vitcpp / torchvision |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
