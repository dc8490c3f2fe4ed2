#!/usr/bin/python3
"""The report of scripts/bench_distill.sh: the teacher, then per seed the distilled and the plain
student (final and best test top-1, epochs, training minutes, teacher + student minutes) and the
distillation gain, as Markdown on stdout and JSON; the best distilled run's accuracy.png is copied.

usage: distill_report.py --teacher T.json --config C --jobs J --threads N --set S --json OUT --png PNG \\
           MODE:SEED=RUN_DIR ...
"""
import argparse
import csv
import datetime
import json
import os
import platform
import shutil
import statistics


def read_metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.csv")) as file:
        rows = list(csv.DictReader(file))
    top1 = [float(row["val_top1"]) for row in rows if row["val_top1"]]
    return {"epochs": len(rows), "final_top1": top1[-1], "best_top1": max(top1), "top1_per_epoch": top1,
            "train_minutes": sum(float(row["seconds"]) for row in rows) / 60.0}


def seed_gains(runs, treated, control):
    """Final top-1 points of the `treated` run over the `control` run of the same seed, per seed."""
    gains = []
    for seed in sorted({run["seed"] for run in runs}):
        by_mode = {run["mode"]: run for run in runs if run["seed"] == seed}
        if treated in by_mode and control in by_mode:
            gains.append(100 * (by_mode[treated]["final_top1"] - by_mode[control]["final_top1"]))
    return gains


def cpu_name():
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    parser = argparse.ArgumentParser()
    for flag in ("--teacher", "--config", "--json", "--png", "--set", "--plain-set"):
        parser.add_argument(flag, required=not flag.endswith("set"), default="")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("runs", nargs="+")
    args = parser.parse_args()

    teacher = json.load(open(args.teacher))
    runs = []
    for spec in args.runs:
        label, run_dir = spec.split("=", 1)
        mode, seed = label.split(":")
        runs.append(dict(mode=mode, seed=int(seed), dir=run_dir, **read_metrics(run_dir)))
    teacher_minutes = teacher["seconds"] / 60.0

    out = [f"CPU: {cpu_name()}; {datetime.datetime.now().isoformat(timespec='seconds')}; config `{args.config}`"
           + (f" with `{args.set}`" if args.set else "")
           + (f"; the plain student with `{args.plain_set}`" if args.plain_set else "")
           + f"; students run {args.jobs} at a time with "
           f"{args.threads} thread(s) each", "",
           f"Teacher (scripts/bench/distill_teacher.py, PyTorch eager, {teacher['threads']} threads): a CNN of "
           f"{teacher['parameters']:,} parameters, {teacher['epochs']} epochs, seed {teacher['seed']}: test top-1 "
           f"{100 * teacher['top1']:.2f} % in {teacher_minutes:.1f} min", "",
           "| student | seed | epochs | final top-1 % | best top-1 % | student training (min) | + teacher (min) |",
           "|---|---|---|---|---|---|---|"]
    for run in runs:
        total = run["train_minutes"] + (teacher_minutes if run["mode"] == "distilled" else 0.0)
        out.append(f"| {run['mode']} | {run['seed']} | {run['epochs']} | {100 * run['final_top1']:.2f} | "
                   f"{100 * run['best_top1']:.2f} | {run['train_minutes']:.1f} | {total:.1f} |")
    gains = seed_gains(runs, "distilled", "plain")
    distilled = [run for run in runs if run["mode"] == "distilled"]
    out += ["", "| target | measured | needed | met |", "|---|---|---|---|"]
    if distilled:
        best = max(distilled, key=lambda run: run["final_top1"])
        mean = statistics.mean(100 * run["final_top1"] for run in distilled)
        out.append(f"| distilled final test top-1, mean of {len(distilled)} seed(s) | {mean:.2f} % | ≥ 93.0 % | "
                   f"{'yes' if mean >= 93.0 else 'no'} |")
        shutil.copyfile(os.path.join(best["dir"], "accuracy.png"), args.png)
    if gains:
        mean_gain = statistics.mean(gains)
        out.append(f"| distillation gain (points, same seed), mean of {len(gains)} | {mean_gain:+.2f} "
                   f"({', '.join(f'{g:+.2f}' for g in gains)}) | ≥ +1.0 | {'yes' if mean_gain >= 1.0 else 'no'} |")
    out += ["", "Test top-1 per epoch (%):", ""]
    for run in runs:
        curve = " ".join(f"{100 * value:.1f}" for value in run["top1_per_epoch"])
        out.append(f"- {run['mode']} seed {run['seed']}: {curve}")
    print("\n".join(out))
    json.dump({"teacher": teacher, "runs": runs, "gains": gains, "jobs": args.jobs, "threads": args.threads,
               "config": args.config, "set": args.set, "plain_set": args.plain_set}, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
