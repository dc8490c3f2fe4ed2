#!/usr/bin/python3
"""The report of scripts/bench_mae.sh, as Markdown on stdout and JSON: the pretraining step's
throughput against PyTorch eager (median of each round's median, ratio per round), the
pretraining run (epochs, minutes, reconstruction loss curve), then per seed the fine-tuning from
the MAE encoder and from scratch on 1,000 labels (final and best test top-1, curves) and the gain.
The best MAE fine-tuning run's accuracy.png and the pretraining's reconstruction.png are copied.

usage: mae_report.py --work DIR --threads N --set S --json OUT --png PNG --reconstruction PNG MODE:SEED=RUN_DIR ...
"""
import argparse
import csv
import datetime
import glob
import json
import os
import shutil
import statistics

from distill_report import cpu_name, read_metrics, seed_gains


def throughput(work, amp):
    rounds = []
    for vit_file in sorted(glob.glob(os.path.join(work, f"vit-{amp}-*.json"))):
        vit = json.load(open(vit_file))
        reference = json.load(open(vit_file.replace("vit-", "reference-")))
        rounds.append({"vit": vit["images_per_s_median"], "reference": reference["images_per_s_median"],
                       "threads": vit["threads"], "batch_size": vit["batch_size"]})
    for entry in rounds:
        entry["ratio"] = entry["vit"] / entry["reference"]
    return rounds


def pretraining(work):
    summary = json.load(open(os.path.join(work, "pretrain.json")))
    with open(os.path.join(work, "pretrain", "metrics.csv")) as file:
        rows = list(csv.DictReader(file))
    summary["train_loss_per_epoch"] = [float(row["train_loss"]) for row in rows]
    summary["val_loss"] = {int(row["epoch"]): float(row["val_loss"]) for row in rows if row["val_loss"]}
    summary["images_per_s"] = statistics.median(float(row["images_per_s"]) for row in rows)
    return summary


def main():
    parser = argparse.ArgumentParser()
    for flag in ("--work", "--json", "--png", "--reconstruction", "--set"):
        parser.add_argument(flag, required=flag != "--set", default="")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("runs", nargs="+")
    args = parser.parse_args()

    speed = {amp: throughput(args.work, amp) for amp in ("bf16", "none")}
    pretrain = pretraining(args.work)
    runs = []
    for spec in args.runs:
        label, run_dir = spec.split("=", 1)
        mode, seed = label.split(":")
        runs.append(dict(mode=mode, seed=int(seed), dir=run_dir, **read_metrics(run_dir)))

    out = [f"CPU: {cpu_name()}; {datetime.datetime.now().isoformat(timespec='seconds')}; {args.threads} threads; "
           "configs `configs/fashion_mnist_mae.yaml` (pretraining) and `configs/fashion_mnist_mae_finetune.yaml` "
           "(fine-tuning)" + (f" with `{args.set}`" if args.set else ""), "",
           "## Pretraining step throughput (images/s, batch "
           f"{speed['bf16'][0]['batch_size'] if speed['bf16'] else '?'}), vitcpp vs the same MAE step in PyTorch "
           "eager (scripts/bench/mae_reference.py), alternating rounds", "",
           "| precision | vitcpp (median) | PyTorch eager (median) | ratio per round | median ratio |",
           "|---|---|---|---|---|"]
    for amp, rounds in speed.items():
        if not rounds:
            continue
        ratios = [entry["ratio"] for entry in rounds]
        out.append(f"| {'bf16' if amp == 'bf16' else 'fp32'} | {statistics.median(e['vit'] for e in rounds):.0f} | "
                   f"{statistics.median(e['reference'] for e in rounds):.0f} | "
                   f"{', '.join(f'{r:.2f}' for r in ratios)} | {statistics.median(ratios):.2f}× |")
    val = pretrain["val_loss"]
    out += ["", f"## Pretraining: {pretrain['epochs']} epochs over the 60,000 training images (labels unused) in "
            f"{pretrain['seconds'] / 60:.1f} min ({pretrain['images_per_s']:.0f} images/s median per epoch)", "",
            "Validation reconstruction loss (test images, fixed masks) by epoch: "
            + ", ".join(f"{epoch}: {loss:.4f}" for epoch, loss in sorted(val.items())), "",
            "![reconstructions](mae_reconstruction.png)", "",
            "## Fine-tuning on 1,000 labelled images (100 per class), test top-1 on 10,000", "",
            "| start | seed | epochs | final top-1 % | best top-1 % | training (min) |", "|---|---|---|---|---|---|"]
    for run in runs:
        out.append(f"| {'MAE encoder' if run['mode'] == 'mae' else 'scratch'} | {run['seed']} | {run['epochs']} | "
                   f"{100 * run['final_top1']:.2f} | {100 * run['best_top1']:.2f} | {run['train_minutes']:.1f} |")
    gains = seed_gains(runs, "mae", "scratch")
    out += ["", "| target | measured | needed | met |", "|---|---|---|---|"]
    if gains:
        mean_gain = statistics.mean(gains)
        out.append(f"| MAE gain over scratch (final top-1 points, same seed), mean of {len(gains)} | "
                   f"{mean_gain:+.2f} ({', '.join(f'{g:+.2f}' for g in gains)}) | ≥ +5.0 | "
                   f"{'yes' if mean_gain >= 5.0 else 'no'} |")
    if speed["bf16"]:
        ratio = statistics.median(entry["ratio"] for entry in speed["bf16"])
        out.append(f"| pretraining throughput vs PyTorch eager, bf16 | {ratio:.2f}× | ≥ 1.2× | "
                   f"{'yes' if ratio >= 1.2 else 'no'} |")
    out += ["", "Test top-1 per evaluation (every 5 epochs, %):", ""]
    for run in runs:
        out.append(f"- {run['mode']} seed {run['seed']}: " + " ".join(f"{100 * v:.1f}" for v in run["top1_per_epoch"]))
    print("\n".join(out))
    mae_runs = [run for run in runs if run["mode"] == "mae"]
    if mae_runs:
        shutil.copyfile(os.path.join(max(mae_runs, key=lambda run: run["final_top1"])["dir"], "accuracy.png"), args.png)
    shutil.copyfile(os.path.join(args.work, "pretrain", "reconstruction.png"), args.reconstruction)
    json.dump({"throughput": speed, "pretraining": pretrain, "runs": runs, "gains": gains, "threads": args.threads,
               "set": args.set}, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
