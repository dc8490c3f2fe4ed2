#!/usr/bin/python3
"""A plain PyTorch eager masked autoencoder (He et al., 2022), written as facebookresearch/mae's
models_mae.py computes it, on the blocks of reference.py: the ViT encoder over the visible patches
(per-sample random masking by argsort of noise), a decoder with a shared mask token and fixed 2-D
sin-cos positions, the mean squared error over the hidden patches (optionally of per-patch
normalized pixels). The model JSON is `vit bench --json`'s "model" object of a model.arch mae
config (dim, depth, heads, patch_size, decoder_dim, decoder_depth, decoder_heads, mask_ratio,
norm_pix_loss, ...).

reference.py --like MAE_BENCH.json measures this model's pretraining step (bf16 autocast forward,
fp32 loss, backward, clipping, AdamW without decay on biases, norms, tokens), the peer of
`vit bench --mode train` for an MAE config. tests/unit/models/mae/make_mae_reference.py builds it with
random weights to check vitcpp's loss and reconstructions."""
import torch
from torch import nn

from reference import Block, PatchEmbed, sincos_2d


class MaskedAutoencoder(nn.Module):
    def __init__(self, m):
        super().__init__()
        dim, decoder_dim = m["dim"], m["decoder_dim"]
        self.patch_size, self.in_chans = m["patch_size"], m["in_chans"]
        self.grid = m["image_size"] // m["patch_size"]
        self.mask_ratio, self.norm_pix_loss = m["mask_ratio"], m["norm_pix_loss"]
        self.patch_embed = PatchEmbed(m["patch_size"], m["in_chans"], dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.register_buffer("pos_embed", torch.cat([torch.zeros(1, dim), sincos_2d(self.grid, dim)]).unsqueeze(0))
        self.blocks = nn.ModuleList([Block(dim, m["heads"], m["mlp_ratio"], m["qkv_bias"]) for _ in range(m["depth"])])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.mask_token = nn.Parameter(torch.randn(1, 1, decoder_dim) * 0.02)
        self.decoder_embed = nn.Linear(dim, decoder_dim)
        self.register_buffer("decoder_pos_embed",
                             torch.cat([torch.zeros(1, decoder_dim), sincos_2d(self.grid, decoder_dim)]).unsqueeze(0))
        self.decoder_blocks = nn.ModuleList([Block(decoder_dim, m["decoder_heads"], m["mlp_ratio"], True)
                                             for _ in range(m["decoder_depth"])])
        self.decoder_norm = nn.LayerNorm(decoder_dim, eps=1e-6)
        self.decoder_pred = nn.Linear(decoder_dim, m["patch_size"] ** 2 * m["in_chans"])
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def patchify(self, images):
        p, g = self.patch_size, self.grid
        x = images.reshape(images.shape[0], self.in_chans, g, p, g, p)
        return torch.einsum("nchpwq->nhwpqc", x).reshape(images.shape[0], g * g, p * p * self.in_chans)

    def random_masking(self, x, noise):
        n, length, dim = x.shape
        keep = int(length * (1 - self.mask_ratio))
        ids_shuffle = torch.argsort(noise, dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :keep]
        visible = torch.gather(x, 1, ids_keep.unsqueeze(-1).repeat(1, 1, dim))
        mask = torch.ones(n, length, device=x.device)
        mask[:, :keep] = 0
        return visible, torch.gather(mask, 1, ids_restore), ids_restore

    def forward_encoder(self, images, noise):
        x = self.patch_embed(images) + self.pos_embed[:, 1:, :]
        x, mask, ids_restore = self.random_masking(x, noise)
        cls = (self.cls_token + self.pos_embed[:, :1, :]).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.norm(x), mask, ids_restore

    def forward_decoder(self, x, ids_restore):
        x = self.decoder_embed(x)
        mask_tokens = self.mask_token.repeat(x.shape[0], ids_restore.shape[1] + 1 - x.shape[1], 1)
        x_ = torch.cat([x[:, 1:, :], mask_tokens.to(x.dtype)], dim=1)
        x_ = torch.gather(x_, 1, ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))
        x = torch.cat([x[:, :1, :], x_], dim=1) + self.decoder_pos_embed
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:, :]

    def forward(self, images, noise=None):
        """(loss, prediction [B, N, P*P*C] in fp32, mask [B, N] with 1 = hidden)."""
        if noise is None:
            noise = torch.rand(images.shape[0], self.grid * self.grid, device=images.device)
        latent, mask, ids_restore = self.forward_encoder(images, noise)
        pred = self.forward_decoder(latent, ids_restore).float()
        target = self.patchify(images.float())
        if self.norm_pix_loss:
            mean, var = target.mean(dim=-1, keepdim=True), target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1e-6) ** 0.5
        loss = ((pred - target) ** 2).mean(dim=-1)
        return (loss * mask).sum() / mask.sum(), pred, mask
