#!/usr/bin/python3
"""Writes a synthetic JPEG ImageFolder (root/<class>/<n>.jpg) for loader benchmarks.

Images have ImageNet-like sizes (300..500 px per side) and smooth content with edges, so JPEG
decoding costs what it costs on photographs rather than on flat colour or pure noise.
"""
import argparse
import pathlib

import numpy as np
from PIL import Image


def make_image(rng: np.random.Generator) -> Image.Image:
    width, height = rng.integers(300, 501, size=2)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = []
    for _ in range(3):
        fx, fy, phase = rng.uniform(0.005, 0.05), rng.uniform(0.005, 0.05), rng.uniform(0, 6.28)
        channels.append(127 + 100 * np.sin(fx * x + phase) * np.cos(fy * y))
    image = np.stack(channels, axis=-1)
    for _ in range(6):  # a few rectangles for sharp edges
        x0, y0 = rng.integers(0, width - 20), rng.integers(0, height - 20)
        image[y0:y0 + rng.integers(10, 120), x0:x0 + rng.integers(10, 120)] = rng.integers(0, 256, size=3)
    image += rng.normal(0, 6, size=image.shape)
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", type=pathlib.Path)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    for c in range(args.classes):
        folder = args.root / f"class_{c:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(args.per_class):
            make_image(rng).save(folder / f"{n:05d}.jpg", quality=90)


if __name__ == "__main__":
    main()
