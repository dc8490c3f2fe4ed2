"""Writes pretrained-looking ViT weights for tests/e2e/import_command_test.cpp, with the logits they give.

A small torchvision.models.VisionTransformer with random weights is saved as a plain dict
(torch.save), as safetensors bytes written here by hand (no safetensors package needed), renamed
to timm's layout, and inside DeiT's {"model": ...} wrapper. io.safetensors holds the input
batch, torchvision's logits for it, and its positional embedding resampled to a 6x6 grid by
torch.nn.functional.interpolate (bicubic), which `vit import --image-size 48` must reproduce.
"""
import argparse
import collections
import json
import re
import struct
import sys

import torch
import torch.nn.functional as F
from torchvision.models import VisionTransformer


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
    broken["dist_token"] = torch.zeros(1, 1, 32)
    torch.save(broken, f"{out}/broken.pth")

    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        logits = model(images)
    pos = state["encoder.pos_embedding"]
    grid = pos[:, 1:].reshape(1, 4, 4, 32).permute(0, 3, 1, 2)
    resized = F.interpolate(grid, size=(6, 6), mode="bicubic", align_corners=False).permute(0, 2, 3, 1)
    pos48 = torch.cat([pos[:, :1], resized.reshape(1, 36, 32)], dim=1)
    save_safetensors({"images": images, "logits": logits, "pos48": pos48}, f"{out}/io.safetensors")


if __name__ == "__main__":
    main(sys.argv[1])
