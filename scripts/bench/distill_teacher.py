#!/usr/bin/python3
"""The teacher of scripts/bench_distill.sh: a small CNN trained on Fashion-MNIST in plain PyTorch,
as a user would write it (the data as tensors in memory, random crops with 2-pixel padding and
horizontal flips on whole batches, AdamW with a one-cycle schedule, label smoothing 0.1, BatchNorm),
then exported with torch.jit.trace for `train.distillation.teacher`. Its input is the batch
normalized as vitcpp's Fashion-MNIST configs normalize it (mean 0.2860, std 0.3530).

    distill_teacher.py --output TEACHER.pt --epochs 15 --seed 0 --threads 2 > teacher.json

prints one JSON object: test top-1 after each epoch, the final one, parameters and seconds.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference import read_idx_split  # noqa: E402

MEAN, STD = 0.2860, 0.3530
DATA = "/usr/share/datasets/fashion-mnist"


def conv_block(in_chans, out_chans):
    return nn.Sequential(nn.Conv2d(in_chans, out_chans, 3, padding=1, bias=False), nn.BatchNorm2d(out_chans),
                         nn.ReLU(inplace=True))


def teacher_cnn(width):
    return nn.Sequential(conv_block(1, width), conv_block(width, width), nn.MaxPool2d(2),          # 14x14
                         conv_block(width, 2 * width), conv_block(2 * width, 2 * width), nn.MaxPool2d(2),  # 7x7
                         conv_block(2 * width, 4 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Dropout(0.2), nn.Linear(4 * width, 10))


def random_crop_flip(images, generator):
    """Zero-pad by 2, crop 28x28 at a random offset per image, flip half of them."""
    padded = F.pad(images, (2, 2, 2, 2))
    n = images.shape[0]
    offsets = torch.randint(0, 5, (n, 2), generator=generator)
    rows = (offsets[:, 0].reshape(n, 1) + torch.arange(28)).reshape(n, 1, 28, 1).expand(n, 1, 28, 32)
    cropped = padded.gather(2, rows)
    cols = (offsets[:, 1].reshape(n, 1) + torch.arange(28)).reshape(n, 1, 1, 28).expand(n, 1, 28, 28)
    cropped = cropped.gather(3, cols)
    flipped = torch.rand(n, generator=generator) < 0.5
    return torch.where(flipped.reshape(n, 1, 1, 1), cropped.flip(-1), cropped)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", required=True)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)

    start = time.perf_counter()
    train_images, train_labels = read_idx_split(DATA, "train")
    test_images, test_labels = read_idx_split(DATA, "test")
    normalize = lambda images: (images.float() / 255.0 - MEAN) / STD  # noqa: E731
    model = teacher_cnn(args.width).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    steps_per_epoch = len(train_labels) // args.batch
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, epochs=args.epochs,
                                                   steps_per_epoch=steps_per_epoch)
    history = []
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(train_labels), generator=generator)
        for first in range(0, steps_per_epoch * args.batch, args.batch):
            indices = order[first:first + args.batch]
            images = normalize(random_crop_flip(train_images[indices], generator))
            loss = F.cross_entropy(model(images.contiguous(memory_format=torch.channels_last)), train_labels[indices],
                                   label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for first in range(0, len(test_labels), 1000):
                logits = model(normalize(test_images[first:first + 1000]))
                correct += (logits.argmax(1) == test_labels[first:first + 1000]).sum().item()
        history.append(correct / len(test_labels))
        print(f"teacher epoch {epoch + 1}: test top-1 {100.0 * history[-1]:.2f}% "
              f"({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        torch.jit.trace(model, normalize(test_images[:2])).save(args.output)
    print(json.dumps({"top1": history[-1], "top1_per_epoch": history, "seconds": seconds, "epochs": args.epochs,
                      "width": args.width, "seed": args.seed, "threads": args.threads,
                      "parameters": sum(p.numel() for p in model.parameters())}))


if __name__ == "__main__":
    main()
