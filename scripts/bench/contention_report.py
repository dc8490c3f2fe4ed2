#!/usr/bin/python3
"""The report of scripts/bench_contention.sh: per case (vitcpp's default settings, PyTorch eager,
vitcpp with OMP_WAIT_POLICY=PASSIVE, vitcpp with one intra-op thread) the training throughput alone
and beside one busy process (medians over the rounds), the share kept under load and the share of
vitcpp's default solo throughput. Markdown on stdout, JSON to --json.

usage: contention_report.py --json OUT RESULTS.jsonl
"""
import argparse
import datetime
import json
import os
import statistics

TARGET_SHARE = 0.5
CASES = {
    "vitcpp": "vitcpp, default settings",
    "reference": "PyTorch eager (scripts/bench/reference.py)",
    "vitcpp_passive": "vitcpp, OMP_WAIT_POLICY=PASSIVE",
    "vitcpp_1thread": "vitcpp, --threads 1",
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", required=True)
    parser.add_argument("results")
    args = parser.parse_args()
    rows = [json.loads(line) for line in open(args.results) if line.strip()]
    rate = {}
    for case in CASES:
        for load in ("solo", "busy"):
            values = [r["images_per_s"] for r in rows if r["case"] == case and r["load"] == load]
            rate[case, load] = statistics.median(values) if values else None
    report = {"date": datetime.date.today().isoformat(), "cores": os.cpu_count(), "target_share": TARGET_SHARE,
              "rounds": len([r for r in rows if r["case"] == "vitcpp" and r["load"] == "solo"]),
              "cases": {case: {"solo": rate[case, "solo"], "busy": rate[case, "busy"]} for case in CASES}}
    with open(args.json, "w") as file:
        json.dump(report, file, indent=2)
    base = rate["vitcpp", "solo"]
    print("# Training throughput under load (`scripts/bench_contention.sh`)\n")
    print(f"{report['date']}, {report['cores']} cores, {report['rounds']} round(s), medians. `vit bench --mode train` "
          "with the default config's model and step, and the same step in PyTorch eager, alone and beside one busy "
          "process at the same priority (`while :; do :; done`).\n")
    print(f"| case | alone (img/s) | beside a busy process (img/s) | kept | ≥ {TARGET_SHARE:.0%} | "
          "of vitcpp's default alone |")
    print("|---|---|---|---|---|---|")
    for case, label in CASES.items():
        solo, busy = rate[case, "solo"], rate[case, "busy"]
        kept = busy / solo
        print(f"| {label} | {solo:.0f} | {busy:.0f} | {kept:.0%} | {'yes' if kept >= TARGET_SHARE else 'NO'} "
              f"| {solo / base:.0%} alone, {busy / base:.0%} loaded |")


if __name__ == "__main__":
    main()
