"""Candidate action sequences: Gaussian samples around a mean, projected onto the hard limits.

The hard limits are the per-dim bounds ``[low, high]`` (the magnitude limit) and, when given, the per-step
change ``|a_t - a_{t-1}| <= max_delta`` measured from the last commanded action for ``t = 0``. Every
sequence the planner evaluates or returns goes through ``project_sequences``, so the limits hold by
construction (up to one float32 rounding step), not by penalty.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def project_sequences(
    actions: Tensor, low: Tensor, high: Tensor, prev_action: Tensor, max_delta: Optional[Tensor]
) -> Tensor:
    """Clamp each step into the rate window around the previous step, then into the bounds.

    Args:
        actions: ``[S, H, A]`` raw sequences.
        low, high: ``[A]`` bounds.
        prev_action: ``[A]`` the last commanded action (should lie within the bounds).
        max_delta: ``[A]`` per-step change limit, or None for bounds only.
    Returns:
        ``[S, H, A]`` feasible sequences. Bounds win over the rate window: if ``prev_action`` lies outside
        the bounds by more than ``max_delta``, the first step sits on the bound (a magnitude limit is the
        harder safety limit). When ``prev_action`` is within bounds both limits hold.
    """
    if max_delta is None:
        return torch.maximum(torch.minimum(actions, high), low)
    steps = []
    last = prev_action.expand(actions.shape[0], -1)  # [S, A]
    # A loop over the H steps (a handful), each batched over all S samples: each step's window depends
    # on the projected previous step, so this is a sequential scan.
    for t in range(actions.shape[1]):
        a = torch.minimum(torch.maximum(actions[:, t], last - max_delta), last + max_delta)
        a = torch.minimum(torch.maximum(a, low), high)
        steps.append(a)
        last = a
    return torch.stack(steps, dim=1)


def sample_sequences(
    mean: Tensor, std: Tensor, num_samples: int, generator: torch.Generator
) -> Tensor:
    """``[S, H, A]`` Gaussian samples around ``mean [H, A]`` with ``std [H, A]``; sample 0 is the mean itself.

    Keeping the mean as a candidate means an iteration never loses the current best guess (a warm-started
    plan is always re-scored).
    """
    noise = torch.randn(
        (num_samples, *mean.shape), generator=generator, device=mean.device, dtype=mean.dtype
    )
    samples = mean + std * noise
    samples[0] = mean
    return samples
