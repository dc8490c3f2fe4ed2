"""Writes the peers' answers that the detection unit tests compare with, into the folder given:
assignments.txt: random cost matrices (square, wide, tall; continuous and with ties) and
scipy.optimize.linear_sum_assignment's rows, columns and total cost;
giou.txt: random boxes and torchvision.ops.generalized_box_iou / box_iou of every pair."""
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torchvision.ops import box_iou, generalized_box_iou

out = Path(sys.argv[1])
rng = np.random.default_rng(0)

with open(out / "assignments.txt", "w") as f:
    cases = []
    for _ in range(300):
        rows, cols = int(rng.integers(1, 16)), int(rng.integers(1, 16))
        cases.append((rows, cols, rng.normal(size=(rows, cols)) * 10.0))
    for _ in range(50):  # ties: several optimal assignments, the same least cost
        rows, cols = int(rng.integers(1, 9)), int(rng.integers(1, 9))
        cases.append((rows, cols, rng.integers(0, 4, size=(rows, cols)).astype(float)))
    cases.append((100, 10, rng.uniform(size=(100, 10))))  # DETR's shape: 100 queries, 10 objects
    f.write(f"{len(cases)}\n")
    for rows, cols, cost in cases:
        r, c = linear_sum_assignment(cost)
        f.write(f"{rows} {cols}\n")
        f.write(" ".join(repr(float(v)) for v in cost.ravel()) + "\n")
        f.write(" ".join(str(int(v)) for v in r) + "\n")
        f.write(" ".join(str(int(v)) for v in c) + "\n")
        f.write(repr(float(cost[r, c].sum())) + "\n")


def random_boxes(n):
    corner = torch.rand(n, 2)
    size = torch.rand(n, 2) * 0.5 + 0.01
    return torch.cat([corner, corner + size], 1).double()


with open(out / "giou.txt", "w") as f:
    a, b = random_boxes(40), random_boxes(30)
    b[:5] = a[:5]  # identical pairs: GIoU 1
    b[5] = a[5] + torch.tensor([2.0, 2.0, 2.0, 2.0], dtype=torch.float64)  # far apart: GIoU near -1
    for name, t in (("a", a), ("b", b), ("giou", generalized_box_iou(a, b)), ("iou", box_iou(a, b))):
        f.write(f"{name} {' '.join(str(s) for s in t.shape)}\n")
        f.write(" ".join(repr(float(v)) for v in t.ravel()) + "\n")
