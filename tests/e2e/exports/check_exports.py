#!/usr/bin/python3
"""Checks vitcpp's weight exports from Python, against its TorchScript export of the same model.

- safetensors, read with a few lines of numpy (no safetensors package): every tensor equals the
  TorchScript module's, and __metadata__ holds the export's description;
- pth, read with torch.load: a dict of the same tensors, which loads (strict) into the plain
  PyTorch ViT of scripts/bench/reference.py (timm's module names), whose logits must equal the
  TorchScript module's.

usage: check_exports.py MODEL.pt MODEL.safetensors MODEL.pth   (prints a JSON report)
"""
import json
import os
import struct
import sys

import numpy as np
import torch

# The benchmark's plain PyTorch ViT: timm's module names, built from vitcpp's model description.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "scripts", "bench"))
from reference import VisionTransformer  # noqa: E402

NUMPY_TYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (size,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8:8 + size])
    metadata = header.pop("__metadata__", {})
    body = data[8 + size:]
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(body[begin:end], dtype=NUMPY_TYPES[entry["dtype"]]).reshape(entry["shape"])
    return tensors, metadata, (8 + size) % 8


def main():
    torchscript_path, safetensors_path, pth_path = sys.argv[1:4]
    extra = {"config.json": ""}
    scripted = torch.jit.load(torchscript_path, _extra_files=extra).eval()
    config = json.loads(extra["config.json"])
    expected = {name: tensor.detach().numpy() for name, tensor in scripted.state_dict().items()}

    tensors, metadata, misalignment = read_safetensors(safetensors_path)
    assert misalignment == 0, "the safetensors data does not start at an 8-byte boundary"
    assert sorted(tensors) == sorted(expected), (sorted(tensors), sorted(expected))
    for name, array in tensors.items():
        assert np.array_equal(array, expected[name]), f"safetensors {name} differs from the TorchScript module's"
    assert metadata["format"] == "pt", metadata
    for key in ("image_size", "in_chans", "mean", "std", "class_names", "model"):
        assert json.loads(metadata[key]) == config[key], (key, metadata[key], config[key])

    state_dict = torch.load(pth_path)
    assert isinstance(state_dict, dict) and sorted(state_dict) == sorted(expected), sorted(state_dict)
    for name, tensor in state_dict.items():
        assert np.array_equal(tensor.numpy(), expected[name]), f"pth {name} differs from the TorchScript module's"
    model = VisionTransformer(config["model"]).eval()
    model.load_state_dict(state_dict, strict=True)
    images = torch.randn(3, config["in_chans"], config["image_size"], config["image_size"],
                         generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        difference = (model(images) - scripted(images)).abs().max().item()
    print(json.dumps({"tensors": len(tensors), "metadata": sorted(metadata), "max_logit_difference": difference}))


if __name__ == "__main__":
    main()
