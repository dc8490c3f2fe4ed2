#!/usr/bin/python3
"""Writes a label-scarce training split: PER_CLASS images of each class of an IDX dataset's train
split (Fashion-MNIST by default), chosen by a seeded permutation, as train-{images,labels} IDX
files (gzip) in OUT, which `data.train: {source: idx, path: OUT, split: train}` reads.

    make_label_subset.py --output DIR [--source /usr/share/datasets/fashion-mnist] [--per-class 100] [--seed 0]"""
import argparse
import gzip
import os

import torch


def read(path, header):
    with gzip.open(path, "rb") as file:
        data = file.read()
    return data[:header], data[header:]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True)
    parser.add_argument("--source", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    image_header, images = read(os.path.join(args.source, "train-images-idx3-ubyte.gz"), 16)
    label_header, labels = read(os.path.join(args.source, "train-labels-idx1-ubyte.gz"), 8)
    rows, cols = int.from_bytes(image_header[8:12], "big"), int.from_bytes(image_header[12:16], "big")
    pixels = torch.frombuffer(bytearray(images), dtype=torch.uint8).reshape(-1, rows * cols)
    classes = torch.frombuffer(bytearray(labels), dtype=torch.uint8).long()
    order = torch.randperm(len(classes), generator=torch.Generator().manual_seed(args.seed))
    chosen = torch.cat([order[classes[order] == c][:args.per_class] for c in range(int(classes.max()) + 1)])
    chosen = chosen.sort().values
    os.makedirs(args.output, exist_ok=True)
    count = len(chosen).to_bytes(4, "big")
    with gzip.open(os.path.join(args.output, "train-images-idx3-ubyte.gz"), "wb") as file:
        file.write(image_header[:4] + count + image_header[8:16] + pixels[chosen].numpy().tobytes())
    with gzip.open(os.path.join(args.output, "train-labels-idx1-ubyte.gz"), "wb") as file:
        file.write(label_header[:4] + count + classes[chosen].to(torch.uint8).numpy().tobytes())
    print(f"{len(chosen)} images ({args.per_class} per class) in {args.output}")


if __name__ == "__main__":
    main()
