#!/usr/bin/python3
"""Runs a training command and watches the metrics.csv it writes (vit train's, or the reference's
fit mode): when an epoch's val_top1 first reaches TARGET it records the wall-clock seconds since
the command started, and with --stop-at-target stops the command there (SIGTERM; vit train saves
and exits 143). Prints one JSON object: the time and epoch at the target (null if never reached),
the final and best top-1 and every epoch's row.

    time_to_accuracy.py --target 0.9 --metrics RUN/metrics.csv --log RUN.log [--stop-at-target] -- CMD..."""
import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import time


def read_rows(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as file:
        lines = file.readlines()
    complete = [line for line in lines if line.endswith("\n")]  # a row still being written waits
    return [row for row in csv.DictReader(complete) if row.get("val_top1")]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", type=float, required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--stop-at-target", action="store_true")
    parser.add_argument("command", nargs="+")
    args = parser.parse_args()
    if os.path.exists(args.metrics):
        sys.exit(f"{args.metrics}: exists already; the watcher needs a fresh run")

    start = time.monotonic()
    with open(args.log, "w") as log:
        process = subprocess.Popen(args.command, stdout=log, stderr=subprocess.STDOUT)
    reached = None
    while process.poll() is None:
        time.sleep(0.5)
        if reached is None:
            hit = next((row for row in read_rows(args.metrics) if float(row["val_top1"]) >= args.target), None)
            if hit is not None:
                reached = {"seconds": time.monotonic() - start, "epoch": int(hit["epoch"])}
                if args.stop_at_target:
                    process.send_signal(signal.SIGTERM)
    wall = time.monotonic() - start
    stopped = args.stop_at_target and reached is not None
    if process.returncode not in ((0, 143, -signal.SIGTERM) if stopped else (0,)):
        sys.exit(f"{args.command[0]} exited with {process.returncode}; see {args.log}")

    rows = read_rows(args.metrics)
    top1 = [float(row["val_top1"]) for row in rows]
    print(json.dumps({
        "command": args.command, "target": args.target, "stopped_at_target": stopped,
        "seconds_to_target": reached and reached["seconds"], "epoch_at_target": reached and reached["epoch"],
        "training_seconds_to_target": reached and sum(float(row["seconds"]) for row in rows[:reached["epoch"]]),
        "final_top1": top1[-1] if top1 else None, "best_top1": max(top1) if top1 else None,
        "epochs_run": len(rows), "wall_seconds": wall,
        "epochs": [{"epoch": int(row["epoch"]), "val_top1": float(row["val_top1"]), "seconds": float(row["seconds"])}
                   for row in rows]}))


if __name__ == "__main__":
    main()
