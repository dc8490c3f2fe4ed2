"""The bf16 matrix-product peak of the cores: the fastest rate of two ways to multiply bf16 matrices,
oneDNN's bf16 kernels and the BLAS's fp32 kernels on the bf16 values (what vit runs on CPUs without
AMX), over a grid of shapes. PyTorch, the given thread count; each shape's rate is the median of 5
timed products after 2. Prints one JSON object: each way's best rate and the shape that gave it, and
its rate on 2048^3. With --merge, the medians of such objects (one per benchmark round), the rounds'
figures kept.

Why a grid: on a Xeon with AMX, oneDNN's bf16 product of a ViT's fastest layer shape ran at
1,900-2,175 GFLOP/s on two threads where 2048^3 ran at 1,100-1,200 (2026-12-07), so a peak on the square
alone overstates a model's share of it; the BLAS's fp32 kernels reach their best near 2048^3 too.

    gemm_peak.py THREADS
    gemm_peak.py --merge ROUND1.json ROUND2.json ..."""
import json
import statistics
import sys
import time

import torch

# A ViT's linear layers at 224 px: rows of 16 and 32 images of 197 tokens (a core's slice, a batch),
# widths of ViT-Ti to ViT-B (192 to 768 and their MLPs' 4x); and the square.
SHAPES = [(rows, inner, outer) for rows in (3152, 6304) for inner in (192, 384, 768, 1536)
          for outer in (192, 384, 768, 1536)] + [(2048, 2048, 2048)]


def rate(rows, inner, outer, dtype):
    a, b = torch.randn(rows, inner).to(dtype), torch.randn(inner, outer).to(dtype)
    for _ in range(2):
        a @ b
    rates = []
    for _ in range(5):
        start = time.perf_counter()
        a @ b
        rates.append(2 * rows * inner * outer / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates)


def best_rate(dtype):
    """The fastest shape's rate and that shape, and the rate on 2048^3."""
    rates = {shape: rate(*shape, dtype) for shape in SHAPES}
    shape = max(rates, key=rates.get)
    return rates[shape], list(shape), rates[(2048, 2048, 2048)]


RATES = ("bf16_gemm_gflops", "onednn_bf16_gflops", "fp32_kernels_gflops", "onednn_bf16_2048_gflops",
         "fp32_kernels_2048_gflops")


def merge(paths):
    rounds = [json.load(open(path)) for path in paths]
    merged = {key: statistics.median(result[key] for result in rounds) for key in RATES}
    merged.update(threads=rounds[0]["threads"], rounds={key: [result[key] for result in rounds] for key in RATES},
                  shapes={key: [result[key] for result in rounds] for key in ("onednn_bf16_shape", "fp32_kernels_shape")})
    print(json.dumps(merged))


def main():
    if sys.argv[1] == "--merge":
        merge(sys.argv[2:])
        return
    torch.set_num_threads(int(sys.argv[1]))
    onednn, onednn_shape, onednn_square = best_rate(torch.bfloat16)
    fp32_kernels, fp32_shape, fp32_square = best_rate(torch.float32)
    print(json.dumps({"bf16_gemm_gflops": max(onednn, fp32_kernels), "onednn_bf16_gflops": onednn,
                      "onednn_bf16_shape": onednn_shape, "onednn_bf16_2048_gflops": onednn_square,
                      "fp32_kernels_gflops": fp32_kernels, "fp32_kernels_shape": fp32_shape,
                      "fp32_kernels_2048_gflops": fp32_square, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
