"""Writes what tests/e2e/mae_test.cpp compares vitcpp's masked autoencoder and imports with.

OUT/mae_{grey,rgb}.pt: the state_dict of scripts/bench/mae_reference.py's MaskedAutoencoder with
random weights (grey: 1 channel; rgb: 3 channels with norm_pix_loss), and OUT/mae_{grey,rgb}_io.pt:
images, the mask noise, the loss, the mask and the reconstruction (the visible patches with the
predicted ones in the holes, predictions of normalized patches shown with each patch's own mean and
std) for them.

OUT/mae_pretrain_timm.pth: the rgb model as the official pretraining checkpoints hold it ({"model":
state_dict}, encoder and decoder), and in mae_rgb_io.pt the encoder's class-token features of whole
images (`vit import` keeps the encoder). OUT/vit_avg_timm.pth: a ViT of timm's global_pool='avg'
(no final norm, fc_norm after the mean of the patch tokens, a head) with its logits in
vit_avg_io.pt.
"""
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "scripts", "bench"))
from mae_reference import MaskedAutoencoder  # noqa: E402
from reference import VisionTransformer  # noqa: E402


def spec(in_chans, norm_pix_loss):
    return {"image_size": 16, "patch_size": 4, "in_chans": in_chans, "dim": 32, "depth": 2, "heads": 2,
            "mlp_ratio": 2.0, "qkv_bias": True, "decoder_dim": 16, "decoder_depth": 1, "decoder_heads": 2,
            "mask_ratio": 0.75, "norm_pix_loss": norm_pix_loss}


def randomize(model):
    """Non-trivial values everywhere (biases and norms too), so that every tensor is checked."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)


def unpatchify(model, patches):
    p, g, c = model.patch_size, model.grid, model.in_chans
    x = patches.reshape(patches.shape[0], g, g, p, p, c)
    return torch.einsum("nhwpqc->nchpwq", x).reshape(patches.shape[0], c, g * p, g * p)


def write_mae(out, name, in_chans, norm_pix_loss):
    model = MaskedAutoencoder(spec(in_chans, norm_pix_loss)).eval()
    randomize(model)
    images = torch.randn(3, in_chans, 16, 16)
    noise = torch.rand(3, 16)
    with torch.no_grad():
        loss, pred, mask = model(images, noise)
        target = model.patchify(images)
        if norm_pix_loss:
            pred = pred * (target.var(dim=-1, keepdim=True) + 1e-6) ** 0.5 + target.mean(dim=-1, keepdim=True)
        hidden = unpatchify(model, mask.unsqueeze(-1).expand(-1, -1, pred.shape[-1]))
        masked = images * (1 - hidden)
        reconstructed = masked + unpatchify(model, pred) * hidden
        x = model.patch_embed(images) + model.pos_embed[:, 1:]
        x = torch.cat([(model.cls_token + model.pos_embed[:, :1]).expand(3, -1, -1), x], dim=1)
        for block in model.blocks:
            x = block(x)
        features = model.norm(x)[:, 0]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save(state, os.path.join(out, f"mae_{name}.pt"))
    torch.save({"images": images, "noise": noise, "loss": loss, "mask": mask, "masked": masked,
                "reconstructed": reconstructed, "features": features,
                "parameters": torch.tensor(sum(p.numel() for p in model.parameters()))},
               os.path.join(out, f"mae_{name}_io.pt"))
    return state


class AvgPoolViT(VisionTransformer):
    """timm's VisionTransformer(global_pool='avg'): norm is the identity, fc_norm follows the mean."""

    def __init__(self, m):
        super().__init__(m)
        del self.norm
        self.fc_norm = nn.LayerNorm(m["dim"], eps=1e-6)

    def forward(self, images):
        x = self.patch_embed(images)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        x = self.blocks(x)
        return self.head(self.fc_norm(x[:, 1:].mean(dim=1)))


def main(out):
    torch.manual_seed(0)
    write_mae(out, "grey", 1, False)
    rgb = write_mae(out, "rgb", 3, True)
    torch.save({"model": rgb}, os.path.join(out, "mae_pretrain_timm.pth"))

    vit = AvgPoolViT({"image_size": 16, "patch_size": 4, "in_chans": 3, "num_classes": 5, "dim": 32, "depth": 2,
                      "heads": 2, "mlp_ratio": 2.0, "qkv_bias": True, "pos_embed": "learned", "pool": "avg"}).eval()
    randomize(vit)
    images = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        logits = vit(images)
    torch.save(vit.state_dict(), os.path.join(out, "vit_avg_timm.pth"))
    torch.save({"images": images, "logits": logits}, os.path.join(out, "vit_avg_io.pt"))


if __name__ == "__main__":
    main(sys.argv[1])
