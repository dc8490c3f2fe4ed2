#!/usr/bin/python3
"""The report of scripts/bench_swin.sh: per run (Swin, ViT) its wall time against the 30-minute
budget, epochs, final and best test top-1 and the top-1 after every epoch; then, when a
scripts/bench.sh run measured them, swin_tiny_patch4_window7_224's training and evaluation
throughput against torchvision's swin_t. Markdown on stdout, JSON to --json.

usage: swin_report.py --json OUT [--throughput RESULTS.jsonl] NAME:SEED:CONFIG=RUN_DIR ...
"""
import argparse
import csv
import datetime
import json
import os

BUDGET_MINUTES = 30.0
THROUGHPUT_TARGET = 1.1


def read_run(spec):
    label, run_dir = spec.split("=", 1)
    name, seed, config = label.split(":", 2)
    with open(os.path.join(run_dir, "metrics.csv")) as file:
        rows = list(csv.DictReader(file))
    top1 = [100 * float(row["val_top1"]) for row in rows if row["val_top1"]]
    wall_file = os.path.join(run_dir, "wall.json")
    wall = json.load(open(wall_file))["wall_seconds"] / 60 if os.path.exists(wall_file) else None
    return {"name": name, "seed": int(seed), "config": config, "epochs": len(rows), "wall_minutes": wall,
            "train_minutes": sum(float(row["seconds"]) for row in rows) / 60, "final_top1": top1[-1],
            "best_top1": max(top1), "top1_per_epoch": top1}


def swin_throughput(path):
    if not path or not os.path.exists(path):
        return []
    cases = [json.loads(line) for line in open(path) if line.strip()]
    rows = []
    for case in cases:
        if not case["case"].startswith("swin"):
            continue
        ours, theirs = case["vitcpp"], case["reference"]
        rows.append({"case": case["case"], "mode": ours["mode"], "amp": ours["amp"], "batch": ours["batch_size"],
                     "vitcpp": ours["images_per_s_median"], "reference": theirs["images_per_s_median"],
                     "ratio": ours["images_per_s_median"] / theirs["images_per_s_median"],
                     "threads": ours["threads"], "repeats": len(ours["images_per_s"])})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", required=True)
    parser.add_argument("--throughput")
    parser.add_argument("runs", nargs="+")
    args = parser.parse_args()
    runs = [read_run(spec) for spec in args.runs]
    throughput = swin_throughput(args.throughput)
    date = datetime.datetime.now().isoformat(timespec="seconds")
    json.dump({"date": date, "budget_minutes": BUDGET_MINUTES, "runs": runs, "throughput": throughput},
              open(args.json, "w"), indent=2)

    lines = [f"Fashion-MNIST test top-1 within a {BUDGET_MINUTES:g}-minute budget on this machine's cores; {date}", "",
             "| run | config | seed | epochs | wall (min) | final top-1 % | best top-1 % | within budget |",
             "|---|---|---|---|---|---|---|---|"]
    for run in runs:
        wall = run["wall_minutes"] if run["wall_minutes"] is not None else run["train_minutes"]
        lines.append(f'| {run["name"]} | {run["config"]} | {run["seed"]} | {run["epochs"]} | {wall:.1f} | '
                     f'{run["final_top1"]:.2f} | {run["best_top1"]:.2f} | {"yes" if wall <= BUDGET_MINUTES else "NO"} |')
    lines += ["", "Test top-1 % after each epoch:", ""]
    for run in runs:
        lines.append(f'- {run["name"]} (seed {run["seed"]}): ' + ", ".join(f"{t:.2f}" for t in run["top1_per_epoch"]))
    if throughput:
        lines += ["", "Throughput against torchvision's swin_t in PyTorch eager (scripts/bench.sh, same run, "
                  "alternating rounds, medians):", "",
                  "| model | mode | amp | batch | vitcpp images/s | torchvision images/s | speed-up | target |",
                  "|---|---|---|---|---|---|---|---|"]
        for row in throughput:
            met = "met" if row["ratio"] >= THROUGHPUT_TARGET else "NOT met"
            lines.append(f'| {row["case"]} | {row["mode"]} | {row["amp"]} | {row["batch"]} | {row["vitcpp"]:.2f} | '
                         f'{row["reference"]:.2f} | {row["ratio"]:.2f}x | ≥ {THROUGHPUT_TARGET}x: {met} |')
    print("\n".join(lines))


if __name__ == "__main__":
    main()
