"""Cross-entropy method update: refit the sampling Gaussian to the top-k candidates.

As in V-JEPA 2-AC / DINO-WM CEM: the new mean and std are the elites' mean and std, smoothed with the
previous ones (``momentum``) and with the std floored (``min_std``) so sampling never collapses.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor


def cem_update(
    samples: Tensor,
    costs: Tensor,
    mean: Tensor,
    std: Tensor,
    top_k: int,
    momentum: float,
    min_std: Tensor,
) -> Tuple[Tensor, Tensor]:
    """One CEM refit.

    Args:
        samples: ``[S, H, A]`` evaluated (feasible) sequences.
        costs: ``[S]`` their costs (lower is better; non-finite costs must already be +inf).
        mean, std: ``[H, A]`` current sampling distribution.
        top_k: number of elites.
        momentum: weight of the old mean/std in the new one.
        min_std: ``[A]`` absolute std floor.
    Returns:
        The new ``(mean, std)``, each ``[H, A]``.
    """
    idx = torch.topk(costs, k=top_k, largest=False).indices  # [K]
    elites = samples[idx]  # [K, H, A]
    elite_mean = elites.mean(dim=0)
    elite_std = elites.std(dim=0, unbiased=False) if top_k > 1 else torch.zeros_like(std)
    new_mean = momentum * mean + (1.0 - momentum) * elite_mean
    new_std = momentum * std + (1.0 - momentum) * elite_std
    return new_mean, torch.maximum(new_std, min_std)
