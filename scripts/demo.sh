#!/usr/bin/env bash
# The main job: set up, train the default config (a ViT on Fashion-MNIST), evaluate it on the
# official 10,000-image test split, export TorchScript, and classify a few test images.
# Extra arguments go to `vit train` (e.g. --set train.epochs=2 for a quick look).
set -euo pipefail
cd "$(dirname "$0")/.."
# Only the vit binary: the test suite is not built for the main job.
VIT_TARGET=vit scripts/setup.sh

run="runs/fashion_mnist-$(date +%Y%m%d-%H%M%S)"
build/vit train --output "$run" "$@"
build/vit eval --checkpoint "$run/best.ckpt" --json "$run/eval.json"
build/vit export --checkpoint "$run/best.ckpt" --output "$run/model.pt"

# A few test images as PNG files, to classify the way a user would.
samples="$run/samples"
mkdir -p "$samples"
/usr/bin/python3 - "$samples" <<'PY'
import gzip, sys
import numpy as np
from PIL import Image
names = ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle_boot"]
root = "/usr/share/datasets/fashion-mnist/"
images = np.frombuffer(gzip.open(root + "t10k-images-idx3-ubyte.gz").read()[16:], np.uint8).reshape(-1, 28, 28)
labels = np.frombuffer(gzip.open(root + "t10k-labels-idx1-ubyte.gz").read()[8:], np.uint8)
for i in range(6):
    Image.fromarray(images[i]).save(f"{sys.argv[1]}/{i}_{names[labels[i]]}.png")
PY
build/vit predict --model "$run/model.pt" --topk 3 "$samples"
build/vit predict --model "$run/best.ckpt" --attention-map "$run/attention.png" "$samples/0_Ankle_boot.png"

cat <<SUMMARY

Run directory:   $run
  checkpoints    $run/last.ckpt, $run/best.ckpt, $run/epoch_*.ckpt
  metrics        $run/metrics.csv, $run/steps.csv, plots $run/{loss,accuracy,lr}.png
  TensorBoard    $run/events.out.tfevents.*  (tensorboard --logdir $(dirname "$run"))
  evaluation     $run/eval.json, confusion matrix $run/eval/confusion.{csv,png}
  TorchScript    $run/model.pt  (python3 -c "import torch; torch.jit.load('$run/model.pt')")
  attention      $run/attention.png
SUMMARY
