"""Read-out head: a latent frame [B, N, D] -> positions in metres [B, P] (tool, objects).

It gives the planner an energy that counts what the task is about. An L1 distance to a goal IMAGE weighs
the tool, whose goal pose the image also shows, about as much as a 5-pixel block, and a block more than its
own size from its goal adds a constant, not a slope (docs/DIAGNOSTICS.md). A head trained to say where
the block is ranks block positions by distance, so the planner can push.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ami_world_model.models.config import ReadoutConfig


class Readout(nn.Module):
    """LayerNorm per token -> flatten -> MLP -> de-normalised positions."""

    def __init__(self, cfg: ReadoutConfig, num_latents: int, latent_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.norm = nn.LayerNorm(latent_dim)
        self.mlp = nn.Sequential(nn.Linear(num_latents * latent_dim, cfg.hidden), nn.GELU(),
                                 nn.Linear(cfg.hidden, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, cfg.dim))
        # Non-persistent: rebuilt from the config, so they never disagree with the checkpoint JSON.
        self.register_buffer("mean", torch.tensor(cfg.mean, dtype=torch.float32), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.std, dtype=torch.float32), persistent=False)
        self.register_buffer("weights", torch.tensor(cfg.object_weights(), dtype=torch.float32), persistent=False)

    def normalized(self, z: Tensor) -> Tensor:
        """z [B, N, D] -> normalised positions [B, P] (what the training loss compares)."""
        return self.mlp(self.norm(z).flatten(1))

    def forward(self, z: Tensor) -> Tensor:
        """z [B, N, D] -> positions [B, P] in metres."""
        return self.normalized(z) * self.std + self.mean

    def normalize(self, positions: Tensor) -> Tensor:
        return (positions - self.mean) / self.std

    def distance(self, pred: Tensor, goal: Tensor) -> Tensor:
        """Weighted sum over objects of the planar distance (metres); pred [S, P], goal [P] or [S, P] -> [S]."""
        return (per_object_distance(pred, goal) * self.weights).sum(dim=1)


def per_object_distance(pred: Tensor, goal: Tensor) -> Tensor:
    """Planar distance of each object's position to the goal's: pred [S, P], goal [P] or [S, P] -> [S, P/2]
    (positions come in (x, y) pairs per object, as ``ReadoutConfig.names``)."""
    return (pred - goal).unflatten(-1, (-1, 2)).norm(dim=-1)
