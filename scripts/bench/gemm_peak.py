"""The bf16 matrix-product peak of the cores: the faster of two ways to multiply bf16 matrices,
oneDNN's bf16 kernels and the BLAS's fp32 kernels on the bf16 values (what vit runs on CPUs without
AMX). PyTorch, 2048^3, the given thread count; median of 5 timed products after 2. Prints one JSON
object. With --merge, the medians of such objects (one per benchmark round), the rounds' figures kept.

    gemm_peak.py THREADS
    gemm_peak.py --merge ROUND1.json ROUND2.json ..."""
import json
import statistics
import sys
import time

import torch


def rate(a, b):
    for _ in range(2):
        a @ b
    rates = []
    for _ in range(5):
        start = time.perf_counter()
        a @ b
        rates.append(2 * 2048 ** 3 / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates)


RATES = ("bf16_gemm_gflops", "onednn_bf16_gflops", "fp32_kernels_gflops")


def merge(paths):
    rounds = [json.load(open(path)) for path in paths]
    merged = {key: statistics.median(result[key] for result in rounds) for key in RATES}
    merged.update(threads=rounds[0]["threads"], rounds={key: [result[key] for result in rounds] for key in RATES})
    print(json.dumps(merged))


def main():
    if sys.argv[1] == "--merge":
        merge(sys.argv[2:])
        return
    torch.set_num_threads(int(sys.argv[1]))
    a, b = torch.randn(2048, 2048).bfloat16(), torch.randn(2048, 2048).bfloat16()
    onednn, fp32_kernels = rate(a, b), rate(a.float(), b.float())
    print(json.dumps({"bf16_gemm_gflops": max(onednn, fp32_kernels), "onednn_bf16_gflops": onednn,
                      "fp32_kernels_gflops": fp32_kernels, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
