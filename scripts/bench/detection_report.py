#!/usr/bin/python3
"""The report of scripts/bench_detection.sh: per training seed, the best checkpoint's COCO mAP,
AP50 and AP75 on the shapes task's validation split (from `vit eval --json`), the wall time against
the 30-minute budget, and the curve of validation mAP and AP50 after every epoch with the elapsed
minutes. Markdown on stdout, JSON to --json.

usage: detection_report.py --json OUT --config DETECTION_YAML SEED=RUN_DIR ...
"""
import argparse
import csv
import datetime
import json
import os

BUDGET_MINUTES = 30.0
AP50_TARGET = 0.7


def read_run(spec):
    seed, run_dir = spec.split("=", 1)
    with open(os.path.join(run_dir, "metrics.csv")) as file:
        rows = list(csv.DictReader(file))
    evaluation = json.load(open(os.path.join(run_dir, "eval.json")))
    wall = json.load(open(os.path.join(run_dir, "wall.json")))["wall_seconds"] / 60
    elapsed, curve = 0.0, []
    for row in rows:
        elapsed += float(row["seconds"])
        if row["val_map"]:
            curve.append({"epoch": int(row["epoch"]), "minutes": elapsed / 60, "train_loss": float(row["train_loss"]),
                          "map": float(row["val_map"]), "ap50": float(row["val_ap50"])})
    return {"seed": int(seed), "epochs": len(rows), "wall_minutes": wall, "map": evaluation["map"],
            "ap50": evaluation["ap50"], "ap75": evaluation["ap75"], "per_class": evaluation["per_class"],
            "images_per_s": sum(float(r["images_per_s"]) for r in rows) / max(1, len(rows)), "curve": curve}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("runs", nargs="+")
    args = parser.parse_args()
    runs = [read_run(spec) for spec in args.runs]
    report = {"date": datetime.date.today().isoformat(), "cores": os.cpu_count(), "budget_minutes": BUDGET_MINUTES,
              "ap50_target": AP50_TARGET, "config": open(args.config).read(), "runs": runs}
    with open(args.json, "w") as file:
        json.dump(report, file, indent=2)

    print("# DETR on the shapes task (`scripts/bench_detection.sh`)\n")
    print(f"{report['date']}, {report['cores']} cores. `vit data synth-detection` (6000 training, 500 validation "
          "images of 64², 1-4 circles, squares, triangles and crosses on textured backgrounds), "
          "`detr_shapes_64` trained with the generated `detection.yaml`; the best checkpoint (by validation mAP) "
          "evaluated with `vit eval`.\n")
    print(f"| seed | epochs | wall (min) | mAP@[.5:.95] | AP50 | AP75 | AP50 ≥ {AP50_TARGET} within "
          f"{BUDGET_MINUTES:.0f} min |")
    print("|---|---|---|---|---|---|---|")
    for run in runs:
        met = run["ap50"] >= AP50_TARGET and run["wall_minutes"] <= BUDGET_MINUTES
        print(f"| {run['seed']} | {run['epochs']} | {run['wall_minutes']:.1f} | {run['map']:.3f} | {run['ap50']:.3f} "
              f"| {run['ap75']:.3f} | {'yes' if met else 'NO'} |")
    for run in runs:
        print(f"\nPer-class AP@[.5:.95], seed {run['seed']}: " +
              ", ".join(f"{name} {ap:.3f}" for name, ap in run["per_class"].items()))
        print(f"\nCurve, seed {run['seed']} (validation after each epoch; minutes: the training time so far, validation excluded):\n")
        print("| epoch | minutes | train loss | mAP | AP50 |")
        print("|---|---|---|---|---|")
        for point in run["curve"]:
            print(f"| {point['epoch']} | {point['minutes']:.1f} | {point['train_loss']:.3f} | {point['map']:.3f} "
                  f"| {point['ap50']:.3f} |")
    print(WHAT_HELPED)


WHAT_HELPED = """
## What helped (DETR converges slowly)

Short trials on the same task and seed (2026-12-03, 2 cores, `vit train --config
DIR/detection.yaml` as generated then, with a 60-epoch schedule, and the `--set` shown, stopped after
3-5 minutes; the loss is summed over the 3 decoder blocks, AP50 on the validation split):

| variant | epoch 7 loss | epoch 10 loss | epoch 15 AP50 |
|---|---|---|---|
| the paper's free queries (`model.anchor_queries=false`), lr 5e-4 | 12.58 | 12.57 (plateau) | - (stopped at epoch 10, AP50 0.004) |
| anchor queries (`model.anchor_queries=true`), lr 5e-4 | 11.52 | 10.11 | 0.110 |
| anchor queries, lr 1e-3 (`train.lr=1e-3`) | 12.68 (plateau) | - | - (stopped at epoch 7) |

- Anchor queries (each query owns a learned reference point: its box is an offset from the point in
  logit space and the point's sin-cos position joins the query's position; Anchor DETR, DAB-DETR,
  Conditional DETR) broke the plateau where every query predicts the mean box: the free queries of
  the paper were still at it after 10 epochs. `detr_shapes_64` uses them; the paper's DETR stays
  the default of `model.arch: detr`.
- Auxiliary losses on every decoder block, the pre-norm decoder, DETR's loss weights and gradient
  clipping at 0.1 are on throughout (not ablated).
- A higher learning rate (1e-3) kept the model on the plateau; 5e-4 with a 1-epoch warmup and a
  cosine decay is the recipe.
- bf16 autocast: 320-460 images/s against 230-290 in fp32 for this model on these cores.
"""


if __name__ == "__main__":
    main()
