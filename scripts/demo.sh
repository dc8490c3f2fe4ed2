#!/usr/bin/env bash
# The main job: set up, then show the default Fashion-MNIST model and the ImageNet ViT-B/16.
# (Training, evaluation and export join this script with the `vit train|eval|export` commands.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build/vit info --model vit_micro_patch4_28
echo
build/vit info --model vit_base_patch16_224
