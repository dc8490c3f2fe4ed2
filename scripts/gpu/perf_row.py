#!/usr/bin/env python3
"""Rows of scripts/gpu_check.sh's performance step: vitcpp's bf16 training images/s against PyTorch
eager and torch.compile on the same model and step, and the model FLOP utilisation (training =
3 x the forward's FLOPs as vitcpp runs them, `vit info`'s executed_gflops) against the H200's measured bf16 peak.

    perf_row.py VIT_BENCH.json EAGER.log COMPILE.log|'' VIT_INFO.json CPU_ONLY(0|1)
"""
import json
import sys

H200_BF16_PEAK_TFLOPS = 790.0  # an 8192^3 bf16 product through PyTorch on this machine (the device notes)


def last_json(path):
    return json.loads(open(path).read().strip().splitlines()[-1])


def main(ours_path, eager_path, compiled_path, info_path, cpu_only):
    ours, eager = last_json(ours_path), last_json(eager_path)
    rate, eager_rate = ours["images_per_s_median"], eager["images_per_s_median"]
    case = f"{ours['model'].get('preset') or 'model'} batch {ours['batch_size']} {ours['amp']} training on {ours['device']}"
    tflops = 3 * json.load(open(info_path))["executed_gflops"] * rate / 1e3
    mfu = tflops / H200_BF16_PEAK_TFLOPS
    dry = cpu_only == "1"

    def verdict(ok):
        return "PASS" if dry or ok else "FAIL"

    note = " (CPU dry run: no target)" if dry else ""
    print(f"| speed vs PyTorch eager | {verdict(rate >= eager_rate)} | {case}: vitcpp {rate:.1f} images/s, eager "
          f"{eager_rate:.1f}, {rate / eager_rate:.2f}x (target >= 1.0x){note} |")
    print(f"| model FLOP utilisation | {verdict(mfu >= 0.4)} | {tflops:.3g} TFLOP/s = {100 * mfu:.1f} % of "
          f"{H200_BF16_PEAK_TFLOPS:.0f} (target >= 40 %){note} |")
    if compiled_path:
        compiled_rate = last_json(compiled_path)["images_per_s_median"]
        print(f"| speed vs torch.compile | INFO | vitcpp {rate:.1f} images/s, torch.compile {compiled_rate:.1f}, "
              f"{rate / compiled_rate:.2f}x (no target without a CUDA-graph step) |")
    else:
        print("| speed vs torch.compile | SKIP | this PyTorch has no torch.compile |")


if __name__ == "__main__":
    main(*sys.argv[1:6])
