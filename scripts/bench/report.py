#!/usr/bin/python3
"""Turns the measurements of scripts/bench.sh into bench/results.json and a markdown table with
the vitcpp / reference ratios and the performance targets of the project."""
import argparse
import datetime
import json
import os
import platform


def cpu_model():
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("results", "loader", "memory", "json", "markdown"):
        parser.add_argument("--" + name, required=True)
    args = parser.parse_args()
    cases = [json.loads(line) for line in open(args.results) if line.strip()]
    loader = json.load(open(args.loader))
    memory = json.load(open(args.memory))
    first = cases[0]["vitcpp"]
    system = {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": first["threads"],
              "vitcpp_libtorch": first["libtorch"], "reference_pytorch": cases[0]["reference"]["libtorch"],
              "blas": first["blas"], "device": first["device"],
              "vitcpp_allocator": first["allocator"], "reference_allocator": cases[0]["reference"]["allocator"],
              "date": datetime.datetime.now().isoformat(timespec="seconds")}

    def find(name, mode, amp):
        return next(c for c in cases if c["case"] == name and c["vitcpp"]["mode"] == mode and c["vitcpp"]["amp"] == amp)

    rows = []
    for case in cases:
        ours, theirs = case["vitcpp"], case["reference"]
        label = f'{case["case"]} | {ours["mode"]} | {ours["amp"]}'
        if ours["mode"] == "inference":
            rows.append((label, "latency, batch 1 (ms)", ours["latency_ms_batch1_median"],
                         theirs["latency_ms_batch1_median"],
                         theirs["latency_ms_batch1_median"] / ours["latency_ms_batch1_median"]))
        rows.append((label, f'images/s, batch {ours["batch_size"]}', ours["images_per_s_median"],
                     theirs["images_per_s_median"], ours["images_per_s_median"] / theirs["images_per_s_median"]))

    targets = []
    for name in ("fashion_mnist", "vit_tiny_patch16_224"):
        fp32, bf16 = find(name, "train", "none"), find(name, "train", "bf16")
        ratio = fp32["vitcpp"]["images_per_s_median"] / fp32["reference"]["images_per_s_median"]
        targets.append((f"{name}: fp32 training vs reference fp32", ratio, 1.1, ratio >= 1.1))
        ratio = bf16["vitcpp"]["images_per_s_median"] / fp32["reference"]["images_per_s_median"]
        targets.append((f"{name}: bf16 training vs reference fp32", ratio, 1.8, ratio >= 1.8))
    # Swin-T against torchvision's swin_t, each precision against the same precision.
    for mode in ("train", "eval"):
        for amp in ("none", "bf16"):
            case = find("swin_tiny_patch4_window7_224", mode, amp)
            ratio = case["vitcpp"]["images_per_s_median"] / case["reference"]["images_per_s_median"]
            precision = "fp32" if amp == "none" else amp
            targets.append((f"swin_tiny_patch4_window7_224: {precision} {mode} vs torchvision swin_t {precision}", ratio,
                            1.1, ratio >= 1.1))
    training = find("fashion_mnist", "train", "bf16")["vitcpp"]["images_per_s_median"]
    loader_ratio = loader["images_per_s"] / training
    targets.append(("loader images/s vs default bf16 training images/s", loader_ratio, 3.0, loader_ratio >= 3.0))
    targets.append(("peak RSS of a default training run (MB)", memory["peak_rss_mb"], 1024.0,
                    memory["peak_rss_mb"] <= 1024.0))

    json.dump({"system": system, "cases": cases, "loader": loader, "memory": memory,
               "targets": [{"name": n, "value": v, "target": t, "met": m} for n, v, t, m in targets]},
              open(args.json, "w"), indent=2)

    lines = [f'CPU: {system["cpu"]} ({system["cores"]} cores), {system["threads"]} threads; '
             f'vitcpp on LibTorch {system["vitcpp_libtorch"]}, reference on PyTorch {system["reference_pytorch"]}; '
             f'BLAS: {system["blas"]}; malloc: {system["vitcpp_allocator"]} (vitcpp), '
             f'{system["reference_allocator"]} (reference); {system["date"]}', "",
             "| model | mode | amp | measure | vitcpp | reference | vitcpp speed-up |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {label} | {measure} | {ours:.1f} | {theirs:.1f} | {speedup:.2f}x |"
              for label, measure, ours, theirs, speedup in rows]
    lines += ["", f'Loader (default Fashion-MNIST pipeline, batch {loader["batch_size"]}, {loader["workers"]} workers): '
                  f'{loader["images_per_s"]:.0f} images/s', f'Peak RSS of a one-epoch default training run: '
                  f'{memory["peak_rss_mb"]:.0f} MB', "", "| target | measured | needed | met |", "|---|---|---|---|"]
    lines += [f'| {name} | {value:.2f} | {"≤" if "RSS" in name else "≥"} {target:g} | {"yes" if met else "NO"} |'
              for name, value, target, met in targets]
    open(args.markdown, "w").write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
