#!/usr/bin/python3
"""The Python reference for the loader benchmark: torchvision's ImageFolder + DataLoader with
RandomResizedCrop(224) + RandomHorizontalFlip + ToTensor + Normalize, timed like `vit data bench`
(2 warm-up batches excluded). Prints one JSON object."""
import argparse
import json
import time

import torch
from torchvision import datasets, transforms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--image-size", type=int, default=224)
    args = parser.parse_args()

    pipeline = transforms.Compose([
        transforms.RandomResizedCrop(args.image_size),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])
    dataset = datasets.ImageFolder(args.root, transform=pipeline)
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True, drop_last=True,
                                         num_workers=args.workers, persistent_workers=True)
    warmup, batches, images = 2, 0, 0
    start = time.perf_counter()
    while batches < warmup + args.batches:
        for batch, _ in loader:
            batches += 1
            if batches == warmup:
                start = time.perf_counter()
            elif batches > warmup:
                images += batch.shape[0]
            if batches == warmup + args.batches:
                break
    seconds = time.perf_counter() - start
    print(json.dumps({"images_per_s": images / seconds, "images": images, "seconds": seconds,
                      "workers": args.workers, "batch_size": args.batch_size}))


if __name__ == "__main__":
    main()
