"""Writes pretrained-looking ViT weights for tests/e2e/import_command_test.cpp, with the logits they give.

A small torchvision.models.VisionTransformer with random weights is saved as a plain dict
(torch.save), as safetensors bytes written here by hand (no safetensors package needed), renamed
to timm's layout, and inside DeiT's {"model": ...} wrapper. io.safetensors holds the input
batch, torchvision's logits for it, and its positional embedding resampled to a 6x6 grid by
torch.nn.functional.interpolate (bicubic), which `vit import --image-size 48` must reproduce.

A distilled DeiT in timm's layout (dist_token, head_dist) comes from the plain PyTorch ViT of
scripts/bench/reference.py with random weights, with its logits at 32 px and, after its positional
embedding is resampled to 6x6 with both special tokens kept, at 48 px (distilled_* in io.safetensors).
"""
import os
import argparse
import collections
import json
import re
import struct
import sys

import torch
import torch.nn.functional as F
from torchvision.models import VisionTransformer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "bench"))
from reference import VisionTransformer as ReferenceViT  # noqa: E402


def save_safetensors(tensors, path):
    header, offset, blobs = {}, 0, []
    for name, tensor in tensors.items():
        data = tensor.detach().contiguous().to(torch.float32).numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def timm_name(name):
    rules = [(r"^class_token$", "cls_token"), (r"^conv_proj\.", "patch_embed.proj."),
             (r"^encoder\.pos_embedding$", "pos_embed"), (r"^encoder\.ln\.", "norm."), (r"^heads\.head\.", "head."),
             (r"^encoder\.layers\.encoder_layer_(\d+)\.ln_1\.", r"blocks.\1.norm1."),
             (r"^encoder\.layers\.encoder_layer_(\d+)\.ln_2\.", r"blocks.\1.norm2."),
             (r"^encoder\.layers\.encoder_layer_(\d+)\.self_attention\.in_proj_weight$", r"blocks.\1.attn.qkv.weight"),
             (r"^encoder\.layers\.encoder_layer_(\d+)\.self_attention\.in_proj_bias$", r"blocks.\1.attn.qkv.bias"),
             (r"^encoder\.layers\.encoder_layer_(\d+)\.self_attention\.out_proj\.", r"blocks.\1.attn.proj."),
             (r"^encoder\.layers\.encoder_layer_(\d+)\.mlp\.0\.", r"blocks.\1.mlp.fc1."),
             (r"^encoder\.layers\.encoder_layer_(\d+)\.mlp\.3\.", r"blocks.\1.mlp.fc2.")]
    for pattern, replacement in rules:
        if re.search(pattern, name):
            return re.sub(pattern, replacement, name)
    raise KeyError(name)


def main(out):
    torch.manual_seed(0)
    model = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64,
                              num_classes=5).eval()
    with torch.no_grad():
        for parameter in model.parameters():  # torchvision starts the head at zero; make every weight matter
            parameter.normal_(0.0, 0.2)
    state = {name: tensor for name, tensor in model.state_dict().items()}
    torch.save(state, f"{out}/torchvision.pth")
    save_safetensors(state, f"{out}/torchvision.safetensors")
    timm_state = {timm_name(name): tensor for name, tensor in state.items()}
    # A view with its own strides into a storage laid out otherwise, as slicing and .t() leave them.
    timm_state["blocks.0.mlp.fc1.weight"] = timm_state["blocks.0.mlp.fc1.weight"].t().contiguous().t()
    torch.save(timm_state, f"{out}/timm.pth")
    torch.save({"model": timm_state, "epoch": 300}, f"{out}/deit.pth")
    # As users write them: model.state_dict() itself (an OrderedDict with _metadata), a training
    # script's checkpoint around it (with optimizer state and arguments), and DataParallel's
    # "module." names inside {"state_dict": ...}, in half precision.
    torch.save(model.state_dict(), f"{out}/state_dict.pth")
    saved = {name: tensor.clone() for name, tensor in state.items()}
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.randn(1, 3, 32, 32)).sum().backward()
    optimizer.step()  # moments to save; the weights go back to the saved ones
    model.load_state_dict(saved)
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 7,
                "args": argparse.Namespace(lr=0.1, model="vit")}, f"{out}/training_checkpoint.pth")
    ddp = collections.OrderedDict(("module." + timm_name(name), tensor) for name, tensor in state.items())
    torch.save({"state_dict": ddp}, f"{out}/ddp.pth")
    broken = dict(timm_state)
    del broken["blocks.1.norm2.weight"]
    broken["blocks.0.mlp.fc1.weight"] = broken["blocks.0.mlp.fc1.weight"][:, :16]
    broken["pre_logits.fc.weight"] = torch.zeros(32, 32)
    torch.save(broken, f"{out}/broken.pth")

    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        logits = model(images)
    pos48 = resample(state["encoder.pos_embedding"], 1, 6)
    io = {"images": images, "logits": logits, "pos48": pos48}
    io.update(write_distilled(out))
    save_safetensors(io, f"{out}/io.safetensors")


def resample(pos, prefix, grid):
    """timm's resample_abs_pos_embed: the special tokens' rows kept, the patch grid bicubic."""
    old = int(round((pos.shape[1] - prefix) ** 0.5))
    patches = pos[:, prefix:].reshape(1, old, old, -1).permute(0, 3, 1, 2)
    resized = F.interpolate(patches, size=(grid, grid), mode="bicubic", align_corners=False).permute(0, 2, 3, 1)
    return torch.cat([pos[:, :prefix], resized.reshape(1, grid * grid, -1)], dim=1)


def write_distilled(out):
    torch.manual_seed(1)
    options = dict(image_size=32, patch_size=8, in_chans=3, num_classes=5, dim=32, depth=2, heads=2, mlp_ratio=2.0,
                   qkv_bias=True, pos_embed="learned", pool="cls", distilled=True)
    model = ReferenceViT(options).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.2)
    state = dict(model.state_dict())
    torch.save({"model": state, "epoch": 300}, f"{out}/deit_distilled.pth")
    torch.save(dict(state, pos_embed=state["pos_embed"][:, 1:]), f"{out}/deit_distilled_short_pos.pth")
    images = torch.randn(3, 3, 32, 32)
    images48 = torch.randn(2, 3, 48, 48)
    resized = ReferenceViT(dict(options, image_size=48)).eval()
    resized.load_state_dict(dict(state, pos_embed=resample(state["pos_embed"], 2, 6)))
    with torch.no_grad():
        return {"distilled_images": images, "distilled_logits": model(images), "distilled_images48": images48,
                "distilled_logits48": resized(images48), "distilled_pos48": resized.pos_embed.detach()}


if __name__ == "__main__":
    main(sys.argv[1])
