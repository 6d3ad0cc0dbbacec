"""JEPA pretraining parts (I-JEPA recipe): multi-block masking, EMA target encoder, narrow predictor, collapse
monitor. The context encoder sees only the visible patches; the predictor fills in mask tokens at the target
positions; the loss is L1 against the (layer-normalised) EMA target encoder's patch latents.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ami_world_model.models.config import JepaConfig
from ami_world_model.models.encoder import Encoder
from ami_world_model.models.layers import Block, init_weights, rescale_residuals, sincos_2d


@dataclass
class MaskConfig:
    """Multi-block masking (I-JEPA defaults, scaled for small grids)."""

    num_targets: int = 4  # target blocks per image
    target_scale: List[float] = field(default_factory=lambda: [0.15, 0.2])  # fraction of the grid per block
    target_aspect: List[float] = field(default_factory=lambda: [0.75, 1.5])
    context_scale: List[float] = field(default_factory=lambda: [0.85, 1.0])
    min_context: int = 4  # fewer visible patches than this and the sample is redrawn


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand(1, generator=g))


def _block_size(grid: Tuple[int, int], scale: List[float], aspect: List[float], g: torch.Generator
                ) -> Tuple[int, int]:
    gh, gw = grid
    s = _uniform(g, *scale)
    # sample the aspect ratio log-uniformly so tall and wide blocks are equally likely
    ar = math.exp(_uniform(g, math.log(aspect[0]), math.log(aspect[1])))
    area = s * gh * gw
    h = max(1, min(gh, int(round(math.sqrt(area * ar)))))
    w = max(1, min(gw, int(round(math.sqrt(area / ar)))))
    return h, w


def _place(grid: Tuple[int, int], hw: Tuple[int, int], g: torch.Generator) -> Tensor:
    """Bool [gh, gw] with one h x w block at a random position."""
    gh, gw = grid
    h, w = hw
    top = int(torch.randint(0, gh - h + 1, (1,), generator=g))
    left = int(torch.randint(0, gw - w + 1, (1,), generator=g))
    m = torch.zeros(gh, gw, dtype=torch.bool)
    m[top:top + h, left:left + w] = True
    return m


def multiblock_masks(batch: int, grid: Tuple[int, int], g: torch.Generator, cfg: MaskConfig = MaskConfig()
                     ) -> Tuple[Tensor, Tensor]:
    """Sample context and target patch indices for a batch; a pure function of (batch, grid, generator).

    Block sizes are drawn once per batch (so every sample has the same number of target tokens); positions per
    sample. Context = one large block minus every target block (so nothing to predict is visible), truncated
    to the smallest context in the batch by a random subset.

    Returns:
        context [B, Kc] and targets [B, M*Kt] long indices into the flattened gh*gw grid (targets: M blocks of
        Kt tokens each, concatenated; blocks may overlap).
    """
    gh, gw = grid
    t_hw = _block_size(grid, cfg.target_scale, cfg.target_aspect, g)
    c_hw = _block_size(grid, cfg.context_scale, [1.0, 1.0], g)
    ctx_masks, tgt_idx = [], []
    for _ in range(batch):
        for _attempt in range(20):
            blocks = [_place(grid, t_hw, g) for _ in range(cfg.num_targets)]
            union = torch.stack(blocks).any(0)
            ctx = _place(grid, c_hw, g) & ~union
            if int(ctx.sum()) >= cfg.min_context:
                break
        else:  # pathological config: fall back to everything that is not a target
            ctx = ~union
            if int(ctx.sum()) == 0:
                raise ValueError(f"mask config {cfg} leaves no context on a {gh}x{gw} grid")
        ctx_masks.append(ctx.flatten())
        tgt_idx.append(torch.cat([b.flatten().nonzero().squeeze(1) for b in blocks]))
    keep = min(int(m.sum()) for m in ctx_masks)
    contexts = []
    for m in ctx_masks:
        idx = m.nonzero().squeeze(1)
        sel = torch.randperm(idx.numel(), generator=g)[:keep]
        contexts.append(idx[sel].sort().values)
    return torch.stack(contexts), torch.stack(tgt_idx)


class JepaPredictor(nn.Module):
    """Narrow transformer: context latents + mask tokens at target positions -> predicted target latents."""

    def __init__(self, cfg: JepaConfig, enc_dim: int, grid: Tuple[int, int]) -> None:
        super().__init__()
        p = cfg.embed_dim
        self.embed = nn.Linear(enc_dim, p)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, p))
        self.register_buffer("pos", sincos_2d(grid[0], grid[1], p)[None], persistent=False)  # [1, G, P]
        self.blocks = nn.ModuleList([Block(p, cfg.num_heads, cfg.mlp_ratio) for _ in range(cfg.depth)])
        self.norm = nn.LayerNorm(p)
        self.out = nn.Linear(p, enc_dim)
        init_weights(self)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        rescale_residuals(self.blocks)

    def forward(self, ctx: Tensor, ctx_idx: Tensor, tgt_idx: Tensor) -> Tensor:
        """ctx [B,Kc,D], ctx_idx [B,Kc], tgt_idx [B,Kt] -> predictions [B,Kt,D]."""
        b, kc, _ = ctx.shape
        pos = self.pos.expand(b, -1, -1)
        p = pos.shape[-1]
        x = self.embed(ctx) + torch.gather(pos, 1, ctx_idx[..., None].expand(-1, -1, p))  # [B, Kc, P]
        m = self.mask_token + torch.gather(pos, 1, tgt_idx[..., None].expand(-1, -1, p))  # [B, Kt, P]
        x = torch.cat([x, m], dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.out(self.norm(x[:, kc:]))


class JEPA(nn.Module):
    """Context encoder (trained), EMA target encoder (no gradients) and the narrow predictor."""

    def __init__(self, encoder: Encoder, cfg: JepaConfig) -> None:
        super().__init__()
        self.encoder = encoder
        self.target = copy.deepcopy(encoder)
        for p in self.target.parameters():
            p.requires_grad_(False)
        self.predictor = JepaPredictor(cfg, encoder.cfg.embed_dim, encoder.grid)

    def loss(self, images: Tensor, ctx_idx: Tensor, tgt_idx: Tensor) -> Tuple[Tensor, Tensor]:
        """L1 between predicted and target latents at the target positions. -> (loss, target patch latents)."""
        with torch.no_grad():
            h = self.target.forward_patches(images)  # [B, G, D]
            h = F.layer_norm(h, h.shape[-1:])  # I-JEPA: normalised targets keep the scale fixed
            tgt = torch.gather(h, 1, tgt_idx[..., None].expand(-1, -1, h.shape[-1]))  # [B, Kt, D]
        ctx = self.encoder.forward_patches(images, ctx_idx)  # [B, Kc, D]
        pred = self.predictor(ctx, ctx_idx, tgt_idx)
        return F.l1_loss(pred, tgt), h

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """target <- m * target + (1 - m) * online."""
        for pt, po in zip(self.target.parameters(), self.encoder.parameters()):
            pt.mul_(momentum).add_(po.detach(), alpha=1.0 - momentum)


def ema_momentum(step: int, total_steps: int, start: float = 0.996, end: float = 1.0) -> float:
    """Linear momentum schedule start -> end over training (I-JEPA)."""
    frac = min(max(step / max(total_steps, 1), 0.0), 1.0)
    return start + (end - start) * frac


@torch.no_grad()
def collapse_stats(latents: Tensor) -> Dict[str, float]:
    """Collapse monitor on latents [..., D]: per-dim std (mean, min) and effective rank.

    Effective rank = exp(entropy of the normalised singular values of the centred [M, D] matrix) (Roy &
    Vetterli 2007): D for isotropic latents, 1 when everything lies on a line, ~0 spread when collapsed.
    """
    x = latents.reshape(-1, latents.shape[-1]).double()
    x = x - x.mean(0, keepdim=True)
    std = x.std(0)
    s = torch.linalg.svdvals(x)
    p = s / s.sum().clamp_min(1e-12)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()
    return {"std_mean": float(std.mean()), "std_min": float(std.min()), "effective_rank": float(entropy.exp())}
