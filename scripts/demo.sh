#!/usr/bin/env bash
# The main job: set up, then show the default Fashion-MNIST model, ViT-B/16 and the Fashion-MNIST data.
# (Training, evaluation and export join this script with the `vit train|eval|export` commands.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build/vit info --model vit_micro_patch4_28
echo
build/vit info --model vit_base_patch16_224
echo
build/vit data inspect --output runs/inspect
