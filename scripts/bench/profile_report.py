#!/usr/bin/python3
"""Two `profile`s side by side: `vit bench --profile --json` and `reference.py --like ... --profile` of
the same spec (or any two of either), the matrix products matched by operator and input shapes.

    profile_report.py VIT.json REFERENCE.json

Prints, per product shape, each side's ms per step and GFLOP/s; then each side's products and
everything else, and its largest other operators. Times are self times per step: vit's summed over
the threads its slices ran on, the reference's on its calling thread (which waits for its intra-op
threads) — so compare them at one thread, or read them as shares."""
import json
import sys


def load(path):
    result = json.load(open(path))
    if "profile" not in result:
        raise SystemExit(f"profile_report.py: {path} has no profile (run with --profile)")
    return result.get("implementation", path), result["profile"]


def products(profile):
    return {(op["name"], op["shapes"]): op for op in profile["operators"] if op["gflop_per_step"] > 0}


def rate(op):
    return op["gflop_per_step"] / (op["ms_per_step"] / 1000.0) if op and op["ms_per_step"] > 0 else 0.0


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    (name_a, a), (name_b, b) = load(sys.argv[1]), load(sys.argv[2])
    products_a, products_b = products(a), products(b)
    print(f"{'ms/step':>9} {'GFLOP/s':>8} {'ms/step':>9} {'GFLOP/s':>8}  product (left: {name_a}, right: {name_b})")
    keys = sorted(set(products_a) | set(products_b), key=lambda k: -max(products_a.get(k, {}).get("ms_per_step", 0),
                                                                        products_b.get(k, {}).get("ms_per_step", 0)))
    for key in keys:
        op_a, op_b = products_a.get(key), products_b.get(key)
        cells = [f"{op['ms_per_step']:9.2f} {rate(op):8.0f}" if op else f"{'-':>9} {'-':>8}" for op in (op_a, op_b)]
        print(f"{cells[0]} {cells[1]}  {key[0]} {key[1]}")
    for name, profile in ((name_a, a), (name_b, b)):
        total, product_ms = profile["ms_per_step"], profile["product_ms_per_step"]
        others = [op for op in profile["operators"] if op["gflop_per_step"] == 0][:6]
        print(f"{name}: {total:.1f} ms a step, products {product_ms:.1f} ({100 * product_ms / total:.1f} %), "
              f"the rest {total - product_ms:.1f}; largest others: " +
              ", ".join(f"{op['name']} {op['ms_per_step']:.1f}" for op in others))


if __name__ == "__main__":
    main()
