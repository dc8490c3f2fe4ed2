#!/usr/bin/python3
"""Turns the runs of scripts/bench_accuracy.sh into bench/accuracy.json and a markdown table with
the project's targets: vitcpp's default (bf16) time to the target ≤ 0.6x the reference's fp32
time, and vitcpp's bf16 final top-1 within 0.5 points of its fp32 run.

    accuracy_report.py --json OUT.json --markdown OUT.md IMPLEMENTATION:AMP=RUN.json ..."""
import argparse
import datetime
import json

from report import cpu_model


def minutes(seconds):
    return "—" if seconds is None else f"{seconds / 60.0:.1f}"


def percent(fraction):
    return "—" if fraction is None else f"{100.0 * fraction:.2f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", required=True)
    parser.add_argument("--markdown", required=True)
    parser.add_argument("runs", nargs="+")
    args = parser.parse_args()
    runs = {}
    for argument in args.runs:
        name, path = argument.split("=", 1)
        runs[name] = json.load(open(path))
    target = next(iter(runs.values()))["target"]

    lines = [f"CPU: {cpu_model()}; {datetime.datetime.now().isoformat(timespec='seconds')}; target: "
             f"{100.0 * target:.0f} % Fashion-MNIST test top-1", "",
             "| run | amp | time to target (min) | epoch | training time to target (min) | epochs run | "
             "final top-1 % | best top-1 % |", "|---|---|---|---|---|---|---|---|"]
    for name, run in runs.items():
        implementation, amp = name.split(":")
        final = "(stopped at target)" if run["stopped_at_target"] else percent(run["final_top1"])
        lines.append(f"| {implementation} | {amp} | {minutes(run['seconds_to_target'])} | "
                     f"{run['epoch_at_target'] or '—'} | {minutes(run['training_seconds_to_target'])} | "
                     f"{run['epochs_run']} | {final} | {percent(run['best_top1'])} |")

    targets = []
    ours, theirs = runs.get("vitcpp:bf16"), runs.get("reference:none")
    if ours and theirs and ours["seconds_to_target"] and theirs["seconds_to_target"]:
        ratio = ours["seconds_to_target"] / theirs["seconds_to_target"]
        targets.append(("vitcpp bf16 time to target / reference fp32 time", ratio, "≤ 0.6", ratio <= 0.6))
    fp32 = runs.get("vitcpp:none")
    if ours and fp32 and not ours["stopped_at_target"] and not fp32["stopped_at_target"]:
        gap = 100.0 * abs(ours["final_top1"] - fp32["final_top1"])
        targets.append(("vitcpp final top-1, bf16 vs fp32 (points)", gap, "≤ 0.5", gap <= 0.5))
    if targets:
        lines += ["", "| target | measured | needed | met |", "|---|---|---|---|"]
        lines += [f"| {name} | {value:.2f} | {needed} | {'yes' if met else 'NO'} |"
                  for name, value, needed, met in targets]
    json.dump({"runs": runs, "targets": [{"name": n, "value": v, "target": t, "met": m} for n, v, t, m in targets]},
              open(args.json, "w"), indent=2)
    open(args.markdown, "w").write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
