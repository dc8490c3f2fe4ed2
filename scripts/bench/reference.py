#!/usr/bin/python3
"""The Python reference for `vit bench`: a plain PyTorch eager implementation of the same Vision
Transformer (timm's layout: conv patch embedding, class token, pre-norm blocks with fused qkv,
GELU MLP, final norm, class-token or mean pooling) and of the same training step (autocast
forward, fp32 cross-entropy with label smoothing, backward, global-norm clipping, AdamW/SGD with
no weight decay on biases, norms, pos_embed and cls_token, loss read back each step). A Swin
(model.arch swin) is torchvision's own SwinTransformer, the MAE step mae_reference.py's.

    reference.py --like VIT_BENCH.json

repeats exactly the measurement `vit bench --json` described in VIT_BENCH.json (mode, model,
batch size, amp, threads, warm-up, steps, repeats) and prints one JSON object of the same shape.

    reference.py --like VIT_BENCH.json --profile

adds to that object a `profile` of `steps` further steps in the form of `vit bench --profile`
(profile_report.py puts the two side by side).

    reference.py --like VIT_BENCH.json --fit CONFIG.yaml --metrics METRICS.csv

trains that model on Fashion-MNIST with the recipe of a vitcpp config of the default config's
shape (IDX data, mean/std, horizontal flips, AdamW with per-step linear warm-up and cosine decay,
label smoothing, clipping, bf16 autocast or fp32 from VIT_BENCH.json) the way a PyTorch user would
write it: the dataset as tensors in memory, flips and normalization on whole batches, validation
on the test split after every epoch, one metrics.csv row per epoch as `vit train` writes.
Stochastic depth (model.drop_path) is modelled as timm writes it; dropout is not (refused). The model is also
the timm-named peer that tests/e2e/exports/check_exports.py loads vitcpp's state_dict exports into."""
import argparse
import csv
import ctypes
import gzip
import json
import math
import os
import resource
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F
import yaml
from torch import nn


class PatchEmbed(nn.Module):
    def __init__(self, patch_size, in_chans, dim):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim, heads, qkv_bias):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        if hasattr(F, "scaled_dot_product_attention"):  # PyTorch >= 2.0, as vitcpp on LibTorch >= 2.0
            x = F.scaled_dot_product_attention(q, k, v)
        else:
            x = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1) @ v
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class LayerScale(nn.Module):
    def __init__(self, dim, init_value):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), init_value))

    def forward(self, x):
        return x * self.gamma


class DropPath(nn.Module):
    """Stochastic depth as timm writes it: a whole residual branch zeroed per sample with probability
    drop_prob in training, the kept ones scaled by 1 / (1 - drop_prob)."""
    def __init__(self, drop_prob):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep_prob = 1.0 - self.drop_prob
        keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep_prob)
        return x * keep.div_(keep_prob)


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio, qkv_bias, layer_scale=0.0, drop_path=0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads, qkv_bias)
        self.ls1 = LayerScale(dim, layer_scale) if layer_scale > 0 else nn.Identity()
        self.drop_path1 = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, layer_scale) if layer_scale > 0 else nn.Identity()
        self.drop_path2 = DropPath(drop_path)

    def forward(self, x):
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x))))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


def sincos_2d(grid, dim):
    """MAE's 2-D sin-cos table: half the channels encode the row, half the column."""
    def sincos_1d(positions, channels):
        omega = 1.0 / 10000 ** (torch.arange(channels // 2, dtype=torch.float64) / (channels / 2.0))
        angles = positions.reshape(-1, 1) * omega.reshape(1, -1)
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    rows, cols = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64),
                                indexing="ij")
    return torch.cat([sincos_1d(cols, dim // 2), sincos_1d(rows, dim // 2)], dim=1).float()


def sinusoid_1d(positions, dim):
    """The Transformer's 1-D sinusoid: sin on even channels, cos on odd ones."""
    position = torch.arange(positions, dtype=torch.float64).unsqueeze(1)
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float64) * (-math.log(10000.0) / dim))
    table = torch.zeros(positions, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div)
    return table.float()


class VisionTransformer(nn.Module):
    def __init__(self, m):
        super().__init__()
        dim, grid = m["dim"], m["image_size"] // m["patch_size"]
        self.pool = m["pool"]
        self.distilled = m.get("distilled", False)  # DeiT: a distillation token and head_dist
        prefix = 2 if self.distilled else 1
        self.patch_embed = PatchEmbed(m["patch_size"], m["in_chans"], dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        if self.distilled:
            self.dist_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        kind = m["pos_embed"]
        if kind == "learned":
            self.pos_embed = nn.Parameter(torch.randn(1, grid * grid + prefix, dim) * 0.02)
        elif kind in ("sincos", "sinusoid"):
            patches = sincos_2d(grid, dim) if kind == "sincos" else sinusoid_1d(grid * grid, dim)
            self.register_buffer("pos_embed", torch.cat([torch.zeros(prefix, dim), patches]).unsqueeze(0))
        else:
            self.pos_embed = None
        if m.get("dropout", 0.0) > 0 or m.get("attn_dropout", 0.0) > 0:
            raise SystemExit("reference.py: the ViT's dropout is not modelled; bench without it")
        # Stochastic depth rising linearly over the blocks, as timm's torch.linspace(0, rate, depth).
        rate, depth = m.get("drop_path", 0.0), m["depth"]
        drop_paths = [rate * i / (depth - 1) if depth > 1 else rate for i in range(depth)]
        self.blocks = nn.Sequential(*[Block(dim, m["heads"], m["mlp_ratio"], m["qkv_bias"], m.get("layer_scale", 0.0),
                                            drop_path) for drop_path in drop_paths])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, m["num_classes"])
        if self.distilled:
            self.head_dist = nn.Linear(dim, m["num_classes"])
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, images):
        x = self.patch_embed(images)
        tokens = [self.cls_token, self.dist_token] if self.distilled else [self.cls_token]
        x = torch.cat([token.expand(x.shape[0], -1, -1) for token in tokens] + [x], dim=1)
        if self.pos_embed is not None:
            x = x + self.pos_embed
        x = self.norm(self.blocks(x))
        if self.distilled:  # inference: the mean of the class and distillation heads (timm)
            return (self.head(x[:, 0]) + self.head_dist(x[:, 1])) / 2
        return self.head(x[:, 0] if self.pool == "cls" else x[:, 1:].mean(dim=1))


class Fp32LayerNorm(nn.LayerNorm):
    """A LayerNorm of fp32 inputs. PyTorch 1.13's CPU autocast leaves layer_norm to its input's
    dtype, which must then match the fp32 weights: torchvision's Swin stops with "expected scalar
    type BFloat16 but found Float" under bf16 autocast without this (vitcpp casts the same way)."""
    def forward(self, x):
        return super().forward(x.float())


def torchvision_swin(m):
    """torchvision's SwinTransformer (swin_t/s/b) with the spec's sizes; its patch convolution takes
    RGB, so another channel count gets a convolution of its own, as a user would give it."""
    from functools import partial
    from torchvision.models.swin_transformer import SwinTransformer
    model = SwinTransformer(norm_layer=partial(Fp32LayerNorm, eps=1e-5), patch_size=[m["patch_size"]] * 2, embed_dim=m["dim"], depths=[int(d) for d in m["depths"]],
                            num_heads=[int(h) for h in m["heads"]], window_size=[m["window_size"]] * 2,
                            mlp_ratio=m["mlp_ratio"], dropout=m["dropout"], attention_dropout=m["attn_dropout"],
                            stochastic_depth_prob=m["drop_path"], num_classes=m["num_classes"])
    if m["in_chans"] != 3:
        model.features[0][0] = nn.Conv2d(m["in_chans"], m["dim"], m["patch_size"], m["patch_size"])
    return model


def compiled(spec, model):
    """The model as `torch.compile` makes it when asked (--compile; PyTorch 2.x)."""
    return torch.compile(model) if spec.get("compile") else model


def reference_model(spec):
    """The plain PyTorch model of a `vit bench --json` spec: this file's ViT, MAE's reference
    (mae_reference.py), torchvision's own Swin, DETR's reference (detr_reference.py)."""
    m = spec["model"]
    if m["arch"] == "mae":
        from mae_reference import MaskedAutoencoder
        return MaskedAutoencoder(m)
    if m["arch"] == "detr":
        from detr_reference import Detr
        return Detr(m)
    if m["arch"] == "swin":
        return torchvision_swin(m)
    return VisionTransformer(m)


def make_optimizer(model, t):
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        skipped = ("pos_embed", "cls_token", "dist_token", "mask_token")
        no_decay_name = name in skipped or name.endswith("relative_position_bias_table")
        (decay if parameter.ndim > 1 and not no_decay_name else no_decay).append(parameter)
    groups = [{"params": decay, "weight_decay": t["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    if t["optimizer"] == "adamw":
        return torch.optim.AdamW(groups, lr=t["lr"], betas=tuple(t["betas"]))
    return torch.optim.SGD(groups, lr=t["lr"], momentum=t["momentum"])


PRODUCTS = ("aten::mm", "aten::addmm", "aten::bmm")


def product_flops(name, shapes):
    """2·m·n·k of a matrix product from its input shapes (times the batch for bmm), as vit bench counts."""
    first, rank = (1 if name == "aten::addmm" else 0), (3 if name == "aten::bmm" else 2)
    if name not in PRODUCTS or len(shapes) < first + 2:
        return 0.0
    a, b = shapes[first], shapes[first + 1]
    if len(a) != rank or len(b) != rank or a[-1] != b[-2]:
        return 0.0
    return 2.0 * (a[0] if rank == 3 else 1) * a[-2] * a[-1] * b[-1]


def operator_profile(step, steps):
    """`vit bench --profile`'s report for this side: each operator's self CPU time per step (on the
    calling thread, which waits for its intra-op threads), the matrix products apart by input shapes."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True) as profiler:
        for _ in range(steps):
            step()
    rows = {}
    for event in profiler.key_averages(group_by_input_shape=True):
        shapes = [list(shape) for shape in event.input_shapes] if event.key in PRODUCTS else []
        text = " ".join("[" + ", ".join(str(d) for d in shape) + "]" for shape in shapes if shape)
        row = rows.setdefault((event.key, text), {"name": event.key, "shapes": text, "calls_per_step": 0.0,
                                                  "ms_per_step": 0.0, "gflop_per_step": 0.0})
        row["calls_per_step"] += event.count / steps
        row["ms_per_step"] += event.self_cpu_time_total / 1000.0 / steps
        row["gflop_per_step"] += event.count * product_flops(event.key, shapes) / 1e9 / steps
    operators = sorted(rows.values(), key=lambda row: -row["ms_per_step"])
    products = [row for row in operators if row["name"] in PRODUCTS]
    return {"steps": steps, "ms_per_step": sum(row["ms_per_step"] for row in operators),
            "product_ms_per_step": sum(row["ms_per_step"] for row in products),
            "product_gflop_per_step": sum(row["gflop_per_step"] for row in products), "operators": operators}


def measure_steps(spec, device, step, profile=False):
    """Seconds per call of `step` for each repeat, after the warm-up calls (as vit bench), and with
    `profile` the operators of `steps` further calls (else None)."""
    def wait():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(spec["warmup"]):
        step()
    wait()
    seconds = []
    for _ in range(spec["repeats"]):
        start = time.perf_counter()
        for _ in range(spec["steps"]):
            step()
        wait()
        seconds.append((time.perf_counter() - start) / spec["steps"])
    return seconds, (operator_profile(step, spec["steps"]) if profile else None)


def throughput(batch, measured):
    """The images/s of each repeat of measure_steps(), and its profile when there is one."""
    seconds, profile = measured
    result = {"images_per_s": [batch / s for s in seconds]}
    if profile:
        result["profile"] = profile
    return result


def images(spec, device, batch):
    m = spec["model"]
    return torch.randn(batch, m["in_chans"], m["image_size"], m["image_size"], device=device)


def optimizer_step(spec, model, optimizer, forward_loss):
    """One optimizer step as `vit train` takes it: forward_loss() under autocast, backward, clipping,
    the update; returns the loss, read back."""
    t = spec["train"]
    with torch.autocast(torch.device(spec["device"]).type, dtype=torch.bfloat16, enabled=spec["amp"] == "bf16"):
        loss = forward_loss()
    loss.backward()
    if t["grad_clip"] > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), t["grad_clip"])
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


def train_step(spec, model, optimizer, inputs, labels):
    """A classifier's step: fp32 cross-entropy with label smoothing on the autocast logits."""
    smoothing = spec["train"]["label_smoothing"]
    return optimizer_step(spec, model, optimizer,
                          lambda: F.cross_entropy(model(inputs).float(), labels, label_smoothing=smoothing))


def mae_step(spec, model, optimizer, inputs):
    """An MAE pretraining step, the masks drawn by torch.rand as the official code draws them."""
    return optimizer_step(spec, model, optimizer, lambda: model(inputs)[0])


def bench_train(spec, device, profile):
    t, batch = spec["train"], spec["batch_size"]
    if t.get("grad_accum_steps", 1) != 1 or t.get("ema_decay", 0.0) > 0 or spec["amp"] == "fp16":
        raise SystemExit("reference.py: gradient accumulation, EMA and fp16 are not modelled; bench without them")
    inputs = images(spec, device, batch)
    model = reference_model(spec).to(device).train()
    optimizer = make_optimizer(model, t)
    model = compiled(spec, model)
    if spec["model"]["arch"] == "mae":  # the pretraining step of a masked autoencoder
        def step():
            mae_step(spec, model, optimizer, inputs)
    elif spec["model"]["arch"] == "detr":  # a detector's step: matching and the set loss
        from detr_reference import random_objects, set_loss
        objects = random_objects(batch, spec["model"]["num_classes"], device)

        def step():
            optimizer_step(spec, model, optimizer, lambda: set_loss(model(inputs), *objects, t["detection"]))
    else:
        labels = torch.randint(spec["model"]["num_classes"], (batch,), device=device)

        def step():
            train_step(spec, model, optimizer, inputs, labels)

    return throughput(batch, measure_steps(spec, device, step, profile))


def bench_eval(spec, device, profile):
    batch = spec["batch_size"]
    model = compiled(spec, reference_model(spec).to(device).eval())
    inputs = images(spec, device, batch)
    bf16 = spec["amp"] == "bf16"

    def step():
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            model(inputs).argmax(1)

    return throughput(batch, measure_steps(spec, device, step, profile))


def bench_inference(spec, device, profile):
    """torch.jit.trace of the eager model, saved and reloaded, run in fp32 inference mode."""
    model = reference_model(spec).to(device).eval()
    with tempfile.NamedTemporaryFile(suffix=".pt") as file:
        torch.jit.save(torch.jit.trace(model, images(spec, device, 2)), file.name)
        module = torch.jit.load(file.name, map_location=device).eval()

    def run(batch, profile):
        inputs = images(spec, device, batch)

        def step():
            with torch.inference_mode():
                module(inputs)

        return measure_steps(spec, device, step, profile)

    latency_seconds, _ = run(1, False)  # the profile is of the throughput's batches
    result = throughput(spec["batch_size"], run(spec["batch_size"], profile))
    result["latency_ms_batch1"] = [1000.0 * s for s in latency_seconds]
    return result


FIT_KEYS = {"model": None, "output": None,
            "data": {"train", "val", "class_names", "mean", "std", "train_transforms"},
            "train": {"epochs", "batch_size", "optimizer", "lr", "min_lr", "weight_decay", "warmup_epochs",
                      "schedule", "label_smoothing", "grad_clip", "amp"}}


def read_recipe(path):
    """The parts of a vitcpp config that fit() models; anything else is refused by name."""
    config = yaml.safe_load(open(path))
    for section, values in config.items():
        if section not in FIT_KEYS:
            raise SystemExit(f"{path}: {section}: not modelled by the reference's fit mode")
        unknown = set(values) - FIT_KEYS[section] if FIT_KEYS[section] else set()
        unknown |= set(values.get("train_transforms", {})) - {"hflip"} if section == "data" else set()
        if unknown:
            raise SystemExit(f"{path}: {section}.{sorted(unknown)[0]}: not modelled by the reference's fit mode")
    data, train = config["data"], config["train"]
    for split in ("train", "val"):
        if data[split].get("source") != "idx":
            raise SystemExit(f"{path}: data.{split}.source: only idx is modelled")
    if train.get("schedule", "cosine") != "cosine" or train.get("optimizer", "adamw") != "adamw":
        raise SystemExit(f"{path}: train.schedule/optimizer: only cosine AdamW is modelled")
    return data, train


def read_idx_split(folder, split):
    """Fashion-MNIST's gzip'd IDX files as uint8 images [N, 1, 28, 28] and int64 labels."""
    prefix = "train" if split == "train" else "t10k"

    def payload(name, header):
        with gzip.open(os.path.join(folder, name), "rb") as file:
            return file.read()[header:]

    images = torch.frombuffer(bytearray(payload(f"{prefix}-images-idx3-ubyte.gz", 16)), dtype=torch.uint8)
    labels = torch.frombuffer(bytearray(payload(f"{prefix}-labels-idx1-ubyte.gz", 8)), dtype=torch.uint8)
    return images.reshape(-1, 1, 28, 28), labels.long()


def fit(spec, recipe_path, metrics_path, device):
    data, t = read_recipe(recipe_path)
    train_images, train_labels = read_idx_split(data["train"]["path"], data["train"]["split"])
    val_images, val_labels = read_idx_split(data["val"]["path"], data["val"]["split"])
    mean = torch.tensor(data["mean"]).reshape(1, -1, 1, 1)
    std = torch.tensor(data["std"]).reshape(1, -1, 1, 1)
    flip = data.get("train_transforms", {}).get("hflip", 0.0)
    batch, epochs, bf16 = t["batch_size"], t["epochs"], spec["amp"] == "bf16"
    steps_per_epoch = len(train_labels) // batch  # the last partial batch is dropped, as vit train does
    warmup = round(t.get("warmup_epochs", 0) * steps_per_epoch)
    total = epochs * steps_per_epoch

    def lr_at(step):
        if step < warmup:
            return t["lr"] * (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return t["min_lr"] + 0.5 * (t["lr"] - t["min_lr"]) * (1 + math.cos(math.pi * progress))

    def normalize(images):
        return ((images.float() / 255.0 - mean) / std).to(device)

    model = reference_model(spec).to(device)
    optimizer = make_optimizer(model, spec["train"])  # `vit bench --config` resolved the same config
    writer = csv.writer(open(metrics_path, "w", newline="", buffering=1))
    writer.writerow(["epoch", "step", "train_loss", "val_top1", "seconds"])
    step = 0
    for epoch in range(epochs):
        start, loss_sum = time.perf_counter(), 0.0
        model.train()
        order = torch.randperm(len(train_labels))
        for first in range(0, steps_per_epoch * batch, batch):
            indices = order[first:first + batch]
            images = train_images[indices]
            flipped = torch.rand(len(indices)) < flip
            images = torch.where(flipped.reshape(-1, 1, 1, 1), images.flip(-1), images)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step)
            loss_sum += train_step(spec, model, optimizer, normalize(images), train_labels[indices].to(device))
            step += 1
        seconds = time.perf_counter() - start
        model.eval()
        correct = 0
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            for first in range(0, len(val_labels), batch):
                logits = model(normalize(val_images[first:first + batch]))
                correct += (logits.argmax(1).cpu() == val_labels[first:first + batch]).sum().item()
        writer.writerow([epoch + 1, step, loss_sum / steps_per_epoch, correct / len(val_labels), seconds])
        print(f"epoch {epoch + 1}: train loss {loss_sum / steps_per_epoch:.4f}, "
              f"top-1 {100.0 * correct / len(val_labels):.2f}% ({steps_per_epoch * batch / seconds:.0f} img/s)",
              flush=True)


def loaded_allocator():
    """The shared object serving malloc: an LD_PRELOADed tcmalloc/jemalloc, else glibc's."""
    mapped = {line.split()[-1].rsplit("/", 1)[-1] for line in open("/proc/self/maps") if "/" in line}
    return next((name for name in sorted(mapped) if "tcmalloc" in name or "jemalloc" in name), "libc.so.6")


def openblas_kernels():
    """OpenBLAS's kernel set in this process as `vit bench` reports its own ("Cooperlake"), "" for another BLAS."""
    maps = (line.split()[-1] for line in open("/proc/self/maps") if "/" in line)
    library = next((path for path in maps if "openblas" in path.rsplit("/", 1)[-1]), None)
    if library is None:
        return ""
    core_name = ctypes.CDLL(library).openblas_get_corename
    core_name.restype = ctypes.c_char_p
    return core_name().decode()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--like", required=True, help="JSON printed by `vit bench --json`")
    parser.add_argument("--count-parameters", action="store_true", help="print the model's parameter count only")
    parser.add_argument("--fit", metavar="CONFIG", help="train on the data and with the recipe of this vitcpp config")
    parser.add_argument("--metrics", metavar="CSV", help="--fit: where to write the per-epoch metrics")
    parser.add_argument("--compile", action="store_true", help="train or evaluate the model through torch.compile")
    parser.add_argument("--profile", action="store_true",
                        help="after the timed repeats, profile `steps` more steps as `vit bench --profile` does "
                             "(the result's profile); CPU only")
    args = parser.parse_args()
    spec = json.load(open(args.like))
    if args.profile and spec["device"] != "cpu":
        parser.error("--profile times the CPU's operators; the spec's device is " + spec["device"])
    if args.compile:
        if not hasattr(torch, "compile"):
            parser.error(f"--compile needs PyTorch 2.x, this is {torch.__version__}")
        spec["compile"] = True
    if args.count_parameters:
        print(sum(p.numel() for p in reference_model(spec).parameters()))
        return
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    device = torch.device(spec["device"])
    if args.fit:
        if not args.metrics:
            parser.error("--fit needs --metrics")
        fit(spec, args.fit, args.metrics, device)
        return
    bench = {"train": bench_train, "eval": bench_eval, "inference": bench_inference}[spec["mode"]]
    result = bench(spec, device, args.profile)
    for key in ("images_per_s", "latency_ms_batch1"):
        if key in result:
            result[key + "_median"] = statistics.median(result[key])
    result.update({key: spec[key] for key in ("mode", "model", "train", "batch_size", "amp", "device", "warmup",
                                              "steps", "repeats")})
    result.update({"implementation": "pytorch+compile" if spec.get("compile") else "pytorch", "threads": torch.get_num_threads(), "libtorch": torch.__version__,
                   "allocator": loaded_allocator(), "blas_kernels": openblas_kernels(),
                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
