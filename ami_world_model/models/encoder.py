"""ViT encoder: images [B,3,H,W] in [0,1] -> latent grid [B,N,D] (normalisation and pooling inside)."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ami_world_model.config import ImageSpec
from ami_world_model.models.config import EncoderConfig
from ami_world_model.models.layers import Block, init_weights, rescale_residuals, sincos_2d


class Encoder(nn.Module):
    """Patch embedding + fixed 2-D sin-cos positions + pre-norm blocks + final LayerNorm; no CLS token.

    ``forward`` returns the pooled latent grid the world model uses; ``forward_patches`` returns the full
    patch grid (optionally only the tokens in ``keep``), which JEPA pretraining uses.
    """

    def __init__(self, cfg: EncoderConfig, image: ImageSpec) -> None:
        super().__init__()
        self.cfg, self.image = cfg, image
        self.grid = tuple(cfg.grid(image))  # (gh, gw)
        d = cfg.embed_dim
        self.patch_embed = nn.Conv2d(3, d, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.blocks = nn.ModuleList([Block(d, cfg.num_heads, cfg.mlp_ratio) for _ in range(cfg.depth)])
        self.norm = nn.LayerNorm(d)
        # Non-persistent buffers: rebuilt from the config, so they are never a checkpoint mismatch.
        self.register_buffer("pos", sincos_2d(*self.grid, d)[None], persistent=False)  # [1, gh*gw, D]
        self.register_buffer("mean", torch.tensor(image.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(image.std).view(1, 3, 1, 1), persistent=False)
        init_weights(self)
        rescale_residuals(self.blocks)

    def forward_patches(self, images: Tensor, keep: Optional[Tensor] = None) -> Tensor:
        """images [B,3,H,W] in [0,1] -> patch latents [B, gh*gw, D], or [B, K, D] for ``keep`` [B, K]."""
        if images.shape[1:] != (3, self.image.height, self.image.width):
            raise ValueError(
                f"encoder expects images [B,3,{self.image.height},{self.image.width}], got {list(images.shape)}"
            )
        x = (images - self.mean) / self.std
        x = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos  # [B, gh*gw, D]
        if keep is not None:
            x = torch.gather(x, 1, keep[..., None].expand(-1, -1, x.shape[-1]))  # [B, K, D]
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def pool(self, patches: Tensor) -> Tensor:
        """Full patch grid [B, gh*gw, D] -> latent grid [B, N, D] (average over pool x pool cells)."""
        b, _, d = patches.shape
        gh, gw = self.grid
        x = patches.transpose(1, 2).reshape(b, d, gh, gw)  # [B, D, gh, gw]
        p = self.cfg.pool
        if p > 1:
            x = F.avg_pool2d(x, kernel_size=p, stride=p)
        return x.flatten(2).transpose(1, 2)  # [B, N, D]

    def forward(self, images: Tensor) -> Tensor:
        """images [B,3,H,W] float32 in [0,1] -> latents [B,N,D]."""
        return self.pool(self.forward_patches(images))
