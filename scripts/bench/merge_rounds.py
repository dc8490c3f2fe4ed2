#!/usr/bin/python3
"""Merges the one-repeat JSON results of alternating benchmark rounds (scripts/bench.sh) into one
result of the same shape: the per-round figures in order, their medians recomputed.

    merge_rounds.py ROUND1.json ROUND2.json ..."""
import json
import statistics
import sys

MEASURES = ("images_per_s", "latency_ms_batch1")


def main():
    rounds = [json.load(open(path)) for path in sys.argv[1:]]
    merged = dict(rounds[0], repeats=len(rounds))
    for key in MEASURES:
        if key in merged:
            merged[key] = [value for result in rounds for value in result[key]]
            merged[key + "_median"] = statistics.median(merged[key])
    if "peak_rss_mb" in merged:
        merged["peak_rss_mb"] = max(result["peak_rss_mb"] for result in rounds)
    print(json.dumps(merged))


if __name__ == "__main__":
    main()
