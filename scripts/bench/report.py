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
    for name in ("results", "loader", "memory", "peak", "tiny-info", "json", "markdown"):
        parser.add_argument("--" + name, required=True)
    args = parser.parse_args()
    cases = [json.loads(line) for line in open(args.results) if line.strip()]
    loader = json.load(open(args.loader))
    memory = json.load(open(args.memory))
    peak = json.load(open(args.peak))
    tiny_info = json.load(open(args.tiny_info))
    first = cases[0]["vitcpp"]
    system = {"cpu": cpu_model(), "cores": os.cpu_count(), "threads": first["threads"],
              "vitcpp_libtorch": first["libtorch"], "reference_pytorch": cases[0]["reference"]["libtorch"],
              "blas": first["blas"], "device": first["device"],
              "blas_kernels": f'{first["blas_kernels"]} (vitcpp), {cases[0]["reference"]["blas_kernels"]} (reference)',
              "vitcpp_bf16_products": {"blas": "the BLAS's fp32 kernels on bf16 values"}.get(
                  first.get("bf16_products"), "oneDNN"),
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

    def same_precision(name, mode, needed, peer="reference"):
        """Each precision against the reference in the same precision."""
        for amp in ("none", "bf16"):
            case = find(name, mode, amp)
            ratio = case["vitcpp"]["images_per_s_median"] / case["reference"]["images_per_s_median"]
            precision = "fp32" if amp == "none" else amp
            targets.append((f"{name}: {precision} {mode} vs {peer} {precision}", ratio, needed, ratio >= needed))

    for name in ("fashion_mnist", "vit_50_tokens", "vit_tiny_patch16_224", "vit_small_patch16_224",
                 "vit_cifar_65_tokens"):
        for mode in ("train", "eval"):
            same_precision(name, mode, 1.3)
    same_precision("vit_tiny_patch4_32_drop_path", "train", 1.3)
    same_precision("deit_tiny_distilled_patch16_224", "train", 1.2)
    same_precision("mae_vit_fashion_patch4", "train", 1.2, "the MAE reference")
    for mode in ("train", "eval"):
        same_precision("swin_tiny_patch4_window7_224", mode, 1.2, "torchvision swin_t")
    same_precision("detr_shapes_64", "train", 1.2, "the DETR reference")
    # A training step costs about three forwards (the backward: gradients of inputs and of weights),
    # counted as vitcpp runs them: its last block skips the products whose results the class-token
    # head does not read, which the model's nominal count (fvcore's) includes.
    tiny_rate = find("vit_tiny_patch16_224", "train", "bf16")["vitcpp"]["images_per_s_median"]
    tiny_gflops = 3 * tiny_info["executed_gflops"] * tiny_rate
    share = tiny_gflops / peak["bf16_gemm_gflops"]
    way = "fp32_kernels" if peak["fp32_kernels_gflops"] > peak["onednn_bf16_gflops"] else "onednn_bf16"
    kernels = "fp32 kernels on bf16 values" if way == "fp32_kernels" else "oneDNN bf16"
    shapes = ", ".join("x".join(map(str, shape)) for shape in peak["shapes"][f"{way}_shape"])
    targets.append((f"vit_tiny_patch16_224: bf16 training, share of the bf16 product peak ({tiny_gflops:.0f} of "
                    f"{peak['bf16_gemm_gflops']:.0f} GFLOP/s, {kernels}; the rounds' fastest shapes {shapes}; "
                    f"2048^3: {peak[way + '_2048_gflops']:.0f})", share, 0.6, share >= 0.6))
    training = find("fashion_mnist", "train", "bf16")["vitcpp"]["images_per_s_median"]
    loader_ratio = loader["images_per_s"] / training
    targets.append(("loader images/s vs default bf16 training images/s", loader_ratio, 3.0, loader_ratio >= 3.0))
    targets.append(("peak RSS of a default training run (MB)", memory["peak_rss_mb"], 1024.0,
                    memory["peak_rss_mb"] <= 1024.0))

    json.dump({"system": system, "cases": cases, "loader": loader, "memory": memory, "peak": peak,
               "targets": [{"name": n, "value": v, "target": t, "met": m} for n, v, t, m in targets]},
              open(args.json, "w"), indent=2)

    lines = [f'CPU: {system["cpu"]} ({system["cores"]} cores), {system["threads"]} threads; '
             f'vitcpp on LibTorch {system["vitcpp_libtorch"]}, reference on PyTorch {system["reference_pytorch"]}; '
             f'BLAS: {system["blas"]}, kernels {system["blas_kernels"]}; vitcpp\'s bf16 products: '
             f'{system["vitcpp_bf16_products"]} (reference: oneDNN); malloc: {system["vitcpp_allocator"]} (vitcpp), '
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
