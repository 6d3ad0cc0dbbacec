"""Transformer building blocks shared by the encoder, the JEPA predictor and the AC predictor."""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # [B, heads, n, d/heads]
        # mask: bool [n, n], True = may attend (block-causal over time in the AC predictor)
        if q.is_cuda:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:
            # Plain matmul attention: for our short sequences (17-64 tokens) and small heads it is ~4x
            # faster on CPU than the flash kernel, and it exports to ONNX as ordinary ops.
            a = (q @ k.transpose(-2, -1)) * self.scale  # [B, heads, n, n]
            if mask is not None:
                a = a.masked_fill(~mask, float("-inf"))
            y = a.softmax(dim=-1) @ v
        return self.proj(y.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        x = x + self.attn(self.norm1(x), mask)
        return x + self.mlp(self.norm2(x))


def sincos_2d(gh: int, gw: int, dim: int) -> Tensor:
    """Fixed 2-D sin-cos position table [gh*gw, dim] (half the channels per axis), as in MAE / I-JEPA."""
    if dim % 4:
        raise ValueError(f"sincos_2d needs dim divisible by 4, got {dim}")
    quarter = dim // 4
    omega = 1.0 / (10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter))
    ys, xs = torch.meshgrid(torch.arange(gh, dtype=torch.float64), torch.arange(gw, dtype=torch.float64),
                            indexing="ij")
    parts = []
    for coord in (ys.reshape(-1), xs.reshape(-1)):
        ang = coord[:, None] * omega[None, :]  # [gh*gw, quarter]
        parts += [torch.sin(ang), torch.cos(ang)]
    return torch.cat(parts, dim=1).float()


def init_weights(module: nn.Module) -> None:
    """Truncated-normal linear weights, zero biases, unit LayerNorms (the ViT / I-JEPA init)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Conv2d):
            # patch embedding initialised like a linear layer over the flattened patch
            nn.init.trunc_normal_(m.weight.view(m.weight.shape[0], -1), std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def rescale_residuals(blocks: nn.ModuleList) -> None:
    """Scale each block's residual output projections by 1/sqrt(2*layer) (I-JEPA's fix_init_weight)."""
    for i, blk in enumerate(blocks):
        s = math.sqrt(2.0 * (i + 1))
        blk.attn.proj.weight.data.div_(s)
        blk.mlp[2].weight.data.div_(s)
