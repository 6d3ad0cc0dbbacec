"""MPPI update: the new mean is the exp(-cost / temperature)-weighted average of all candidates.

The temperature is in units of the iteration's median-to-best cost gap, so one value works for any latent
scale (an L1 energy on normalised latents and an L2 energy on raw ones alike). The std is the weighted
spread, smoothed and floored like CEM's.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor


def mppi_weights(costs: Tensor, temperature: float) -> Tensor:
    """``[S]`` softmax weights ``exp(-(c - min c) / (temperature * (median c - min c)))``; +inf costs get 0.

    The median-to-best gap is the cost scale: unlike the std it is not inflated by a few huge costs (an
    obstacle penalty), so a temperature means the same thing on every problem.
    """
    finite = torch.isfinite(costs)
    c_min = costs[finite].min()
    c_med = costs.nanmedian() if bool(finite.all()) else costs[finite].median()
    scale = (temperature * (c_med - c_min)).clamp(min=1e-12)
    logits = torch.where(finite, -(costs - c_min) / scale, torch.full_like(costs, -torch.inf))
    return torch.softmax(logits, dim=0)


def mppi_update(
    samples: Tensor,
    costs: Tensor,
    mean: Tensor,
    std: Tensor,
    temperature: float,
    momentum: float,
    min_std: Tensor,
) -> Tuple[Tensor, Tensor]:
    """One MPPI update.

    Args:
        samples: ``[S, H, A]`` evaluated (feasible) sequences.
        costs: ``[S]`` their costs (non-finite costs must already be +inf; at least one finite).
        mean, std: ``[H, A]`` current sampling distribution.
        temperature: lambda, in units of the cost std.
        momentum: weight of the old mean/std in the new one.
        min_std: ``[A]`` absolute std floor.
    Returns:
        The new ``(mean, std)``, each ``[H, A]``.
    """
    w = mppi_weights(costs, temperature)[:, None, None]  # [S, 1, 1]
    w_mean = (w * samples).sum(dim=0)  # [H, A]
    w_std = (w * (samples - w_mean).square()).sum(dim=0).sqrt()
    new_mean = momentum * mean + (1.0 - momentum) * w_mean
    new_std = momentum * std + (1.0 - momentum) * w_std
    return new_mean, torch.maximum(new_std, min_std)
