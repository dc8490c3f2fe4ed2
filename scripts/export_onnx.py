#!/usr/bin/python3
"""Converts a vitcpp TorchScript export to ONNX and checks the result.

LibTorch has no ONNX exporter, so this runs in Python with Debian's python3-torch and
python3-onnx (`vit export --format onnx` calls it; it can also be run by hand):

    scripts/export_onnx.py model.pt model.onnx [--opset 14]

The graph takes `images` [B, C, H, W] (normalized floats, B dynamic) and gives `logits`; the
export's config.json (image size, mean, std, class names, model) is stored as the ONNX model's
metadata_props. The file is checked by onnx.checker (full check, with shape inference). When
onnxruntime is installed, its logits are compared with the TorchScript module's at batch sizes 1
and 3 (max abs difference <= 1e-4); Debian bookworm has no onnxruntime package, and the script
then says that the outputs were not compared.
"""
import argparse
import inspect
import json
import os
import sys
import tempfile
import warnings


def fail(message):
    print(f"export_onnx.py: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("torchscript", help="a vitcpp TorchScript export (vit export --format torchscript)")
    parser.add_argument("output", help="the .onnx file to write")
    parser.add_argument("--opset", type=int, default=14, help="ONNX opset (default 14)")
    args = parser.parse_args()
    try:
        import torch
        import onnx
    except ImportError as error:
        fail(f"{error.name} is missing: install python3-torch and python3-onnx (Debian), or pick another "
             "interpreter with VIT_PYTHON")

    register_missing_symbolics(torch)
    # A ScriptModule has no Python signature to read input names from; the names are given below.
    warnings.filterwarnings("ignore", message=".*skipping _decide_input_format")
    extra = {"config.json": ""}
    try:
        module = torch.jit.load(args.torchscript, map_location="cpu", _extra_files=extra)
    except Exception as error:  # torch raises RuntimeError and ValueError for unreadable archives
        fail(f"{args.torchscript}: not a TorchScript archive: {error}")
    module.eval()
    try:
        config = json.loads(extra["config.json"])
        shape = (config["in_chans"], config["image_size"], config["image_size"])
    except (ValueError, KeyError):
        fail(f"{args.torchscript}: no vitcpp config.json in the archive (export it with `vit export`)")

    example = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
    # A detector's module returns (class logits, boxes); a classifier's the logits.
    outputs = ["logits", "boxes"] if config.get("task") == "detection" else ["logits"]
    folder = os.path.dirname(os.path.abspath(args.output))
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".onnx.tmp", delete=False) as scratch:
        temporary = scratch.name
    # PyTorch 2.9 made the dynamo-based exporter the default; it takes no TorchScript module.
    exporter = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    try:
        try:
            with torch.no_grad():
                torch.onnx.export(module, (example,), temporary, opset_version=args.opset, input_names=["images"],
                                  output_names=outputs, dynamic_axes={name: {0: "batch"} for name in ["images"] + outputs},
                                  **exporter)
            model = onnx.load(temporary)
            for key, value in config.items():
                entry = model.metadata_props.add()
                entry.key = key
                entry.value = value if isinstance(value, str) else json.dumps(value)
            onnx.save(model, temporary)
            onnx.checker.check_model(temporary, full_check=True)
        except Exception as error:  # the exporter and the checker raise many kinds
            fail(f"{args.torchscript}: ONNX export failed: {error}")
        compared = compare_with_onnxruntime(module, temporary, shape, outputs, torch)
        os.replace(temporary, args.output)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    print(f"export_onnx.py: wrote {args.output} (opset {args.opset}, onnx.checker passed; {compared})")


def register_missing_symbolics(torch):
    """aten::unflatten (vitcpp's attention splits the heads with it) has an ONNX symbolic from
    PyTorch 2.0 on; for Debian's 1.13 it is a Reshape to the input's shape with `dim` replaced."""
    if int(torch.__version__.split(".")[0]) >= 2:
        return
    from torch.onnx import symbolic_helper

    def unflatten(g, tensor, dim, sizes):
        rank = symbolic_helper._get_tensor_rank(tensor)
        dim = symbolic_helper._get_const(dim, "i", "dim")
        if dim < 0:
            dim += rank
        shape = g.op("Shape", tensor)
        before = symbolic_helper._slice_helper(g, shape, axes=[0], starts=[0], ends=[dim])
        after = symbolic_helper._slice_helper(g, shape, axes=[0], starts=[dim + 1], ends=[rank])
        middle = g.op("Constant", value_t=torch.tensor(symbolic_helper._get_const(sizes, "is", "sizes"),
                                                       dtype=torch.int64))
        return g.op("Reshape", tensor, g.op("Concat", before, middle, after, axis_i=0))

    torch.onnx.register_custom_op_symbolic("aten::unflatten", unflatten, 11)


def compare_with_onnxruntime(module, path, shape, outputs, torch):
    try:
        import onnxruntime
    except ImportError:
        return "onnxruntime is not installed: the ONNX outputs were not compared with TorchScript's"
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    worst = 0.0
    for batch in (1, 3):
        images = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(batch))
        with torch.no_grad():
            expected = module(images)
        expected = expected if isinstance(expected, tuple) else (expected,)
        got = session.run(outputs, {"images": images.numpy()})
        for ours, theirs in zip(got, expected):
            worst = max(worst, float(abs(ours - theirs.numpy()).max()))
    if not worst <= 1e-4:
        fail(f"onnxruntime's outputs differ from TorchScript's by {worst:.3g}")
    return f"onnxruntime matches TorchScript within {worst:.2g} at batch sizes 1 and 3"


if __name__ == "__main__":
    main()
