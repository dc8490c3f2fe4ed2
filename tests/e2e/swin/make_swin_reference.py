"""Writes what tests/e2e/swin_test.cpp compares vitcpp's Swin Transformer with.

A small variant of torchvision's own SwinTransformer (the class behind swin_t/s/b): 32x32 RGB,
2-pixel patches, width 16, depths [2, 2, 2], heads [2, 4, 8], window 4 (maps 16, 8, 4: shifted
windows in the first two stages, one window in the last), 5 classes, random weights everywhere
(norms and biases too, so that every tensor is checked).

OUT/swin_torchvision.pth: its state_dict in torchvision's names (features.N...).
OUT/swin_timm.pth: the same tensors in timm's (>= 0.9) names; OUT/swin_original.pth: in the
layout of timm < 0.9 and microsoft/Swin-Transformer (patch merging at the end of each stage, head.*).
OUT/swin_io.pt: images, torchvision's logits, its parameter count, and the first block's relative
position bias table resampled to window 2 as timm does (bicubic over the (2w-1)^2 offsets).
"""
import re
import sys

import torch
import torch.nn.functional as F
from torchvision.models.swin_transformer import SwinTransformer

torch.manual_seed(0)


def timm_name(name):
    """torchvision's features.N names -> timm's layers.S.{blocks.M,downsample}."""
    if name.startswith("head."):
        return "head.fc." + name[len("head."):]
    match = re.match(r"features\.(\d+)\.(.*)", name)
    if not match:
        return name
    index, rest = int(match.group(1)), match.group(2)
    if index == 0:
        return {"0": "patch_embed.proj", "2": "patch_embed.norm"}[rest.split(".")[0]] + "." + rest.split(".", 1)[1]
    if index % 2 == 0:
        return f"layers.{index // 2}.downsample.{rest}"
    rest = re.sub(r"^(\d+)\.mlp\.0\.", r"\1.mlp.fc1.", rest)
    rest = re.sub(r"^(\d+)\.mlp\.3\.", r"\1.mlp.fc2.", rest)
    return f"layers.{(index - 1) // 2}.blocks.{rest}"


def original_name(name):
    """timm's >= 0.9 names -> the original layout."""
    match = re.match(r"layers\.(\d+)\.downsample\.(.*)", name)
    if match:
        return f"layers.{int(match.group(1)) - 1}.downsample.{match.group(2)}"
    return name.replace("head.fc.", "head.")


def main(out):
    model = SwinTransformer(patch_size=[2, 2], embed_dim=16, depths=[2, 2, 2], num_heads=[2, 4, 8],
                            window_size=[4, 4], stochastic_depth_prob=0.0, num_classes=5).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        logits = model(images)
    state = model.state_dict()
    torch.save(state, f"{out}/swin_torchvision.pth")
    timm_state = {timm_name(name): tensor for name, tensor in state.items()}
    torch.save(timm_state, f"{out}/swin_timm.pth")
    torch.save({original_name(name): tensor for name, tensor in timm_state.items()}, f"{out}/swin_original.pth")

    table = state["features.1.0.attn.relative_position_bias_table"]  # [(2*4-1)^2, 2]
    grid = table.T.reshape(1, 2, 7, 7)
    resampled = F.interpolate(grid, size=(3, 3), mode="bicubic", align_corners=False).reshape(2, 9).T
    torch.save({"images": images, "logits": logits, "table_window2": resampled.contiguous(),
                "parameters": torch.tensor(sum(p.numel() for p in model.parameters()))}, f"{out}/swin_io.pt")


if __name__ == "__main__":
    main(sys.argv[1])
