"""Read-out head: a latent frame [B, N, D] -> positions in metres [B, P] (tool, objects).

It gives the planner an energy that counts what the task is about. An L1 distance to a goal IMAGE weighs
the tool, whose goal pose the image also shows, about as much as a 5-pixel block, and a block more than its
own size from its goal adds a constant, not a slope (docs/DIAGNOSTICS.md). A head trained to say where
the block is ranks block positions by distance, so the planner can push.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from ami_world_model.models.config import ReadoutConfig


class Readout(nn.Module):
    """LayerNorm per token -> the body ``cfg.kind`` names -> de-normalised positions.

    - ``mlp``: flatten the tokens -> MLP.
    - ``spatial``: per object, a softmax over the latent tokens (which cell is it in?) and an offset within the
      cell, averaged into latent-grid coordinates, then a learned 2x2 map + bias per object into the targets'
      (normalised) units. Regressing coordinates through a flatten is slow to learn (the CoordConv finding):
      on PushT at 64 px, after 600 fine-tune steps the agent's held-out error was 91 px with ``mlp`` (87 px after
      1,500) and 51 px with ``spatial`` (benchmarks/pusht/README.md). Its precision follows the latent grid:
      one token per 8-px patch (``EncoderConfig.pool`` 1) finds such an object several times sooner than
      the default 4x4 grid, whose cells are 16 px. The 2x2 map is a handful of parameters,
      so a camera that mirrors or rotates the image against the world frame is learned quickly; the per-cell
      offsets absorb what is not affine.
    """

    def __init__(self, cfg: ReadoutConfig, num_latents: int, latent_dim: int,
                 grid: Optional[Sequence[int]] = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.norm = nn.LayerNorm(latent_dim)
        if cfg.kind == "spatial":
            gh, gw = grid if grid is not None else _square_grid(num_latents)
            if gh * gw != num_latents:
                raise ValueError(f"read-out grid {gh}x{gw} does not hold {num_latents} latent tokens")
            objects = cfg.dim // 2
            ys, xs = torch.meshgrid(torch.linspace(-1, 1, gh), torch.linspace(-1, 1, gw), indexing="ij")
            self.register_buffer("cells", torch.stack([xs, ys], -1).reshape(num_latents, 1, 2), persistent=False)
            self.half_cell = 1.0 / max(gh - 1, gw - 1, 1)  # half the (smaller) spacing of the cell centres
            self.tokens = nn.Sequential(nn.Linear(latent_dim, cfg.hidden), nn.GELU(),
                                        nn.Linear(cfg.hidden, 3 * objects))  # per object: logit, offset x, y
            # Grid coordinates uniform in [-1, 1] have std 1/sqrt(3); normalised targets have std 1.
            self.to_targets = nn.Parameter(torch.eye(2).repeat(objects, 1, 1) * math.sqrt(3.0))  # [K, 2, 2]
            self.bias = nn.Parameter(torch.zeros(objects, 2))
        else:
            self.mlp = nn.Sequential(nn.Linear(num_latents * latent_dim, cfg.hidden), nn.GELU(),
                                     nn.Linear(cfg.hidden, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, cfg.dim))
        # Non-persistent: rebuilt from the config, so they never disagree with the checkpoint JSON.
        self.register_buffer("mean", torch.tensor(cfg.mean, dtype=torch.float32), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.std, dtype=torch.float32), persistent=False)
        self.register_buffer("weights", torch.tensor(cfg.object_weights(), dtype=torch.float32), persistent=False)

    def normalized(self, z: Tensor) -> Tensor:
        """z [B, N, D] -> normalised positions [B, P] (what the training loss compares)."""
        if self.cfg.kind != "spatial":
            return self.mlp(self.norm(z).flatten(1))
        b, n, _ = z.shape
        out = self.tokens(self.norm(z)).view(b, n, -1, 3)  # [B, N, K, 3]
        attention = out[..., 0].softmax(dim=1)  # over tokens, per object
        where = self.cells + self.half_cell * torch.tanh(out[..., 1:])  # [B, N, K, 2] grid coordinates
        grid_xy = (attention.unsqueeze(-1) * where).sum(dim=1)  # [B, K, 2]
        return (torch.einsum("kij,bkj->bki", self.to_targets, grid_xy) + self.bias).flatten(1)

    def forward(self, z: Tensor) -> Tensor:
        """z [B, N, D] -> positions [B, P] in metres."""
        return self.normalized(z) * self.std + self.mean

    def normalize(self, positions: Tensor) -> Tensor:
        return (positions - self.mean) / self.std

    def distance(self, pred: Tensor, goal: Tensor) -> Tensor:
        """Weighted sum over objects of the planar distance (metres); pred [S, P], goal [P] or [S, P] -> [S]."""
        return (per_object_distance(pred, goal) * self.weights).sum(dim=1)


def _square_grid(num_latents: int) -> Sequence[int]:
    side = int(round(math.sqrt(num_latents)))
    if side * side != num_latents:
        raise ValueError(f"a spatial read-out over {num_latents} tokens needs the latent grid (not square)")
    return side, side


def per_object_distance(pred: Tensor, goal: Tensor) -> Tensor:
    """Planar distance of each object's position to the goal's: pred [S, P], goal [P] or [S, P] -> [S, P/2]
    (positions come in (x, y) pairs per object, as ``ReadoutConfig.names``)."""
    return (pred - goal).unflatten(-1, (-1, 2)).norm(dim=-1)
