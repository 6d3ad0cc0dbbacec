"""Energies: how far a predicted latent is from the goal latent (lower is better).

``latent_energy`` is the distance itself; ``make_energy`` turns a config choice into the
``energy(state, goal) -> [S]`` callable the planner calls after each predicted step. States may be plain
tensors ``[S, ...]`` or objects with a ``latest`` attribute (e.g. ``WorldModelState``, whose ``latest`` is
the newest latent frame ``[S, N, D]``): the energy compares ``latest`` with the goal.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

EnergyFn = Callable[[Any, Tensor], Tensor]


def latent_energy(pred: Tensor, goal: Tensor, kind: str = "l1") -> Tensor:
    """Mean distance over all non-batch dims (tokens and latent dims).

    Args:
        pred: predicted latents ``[S, ...]``.
        goal: goal latents, ``[...]`` or ``[1, ...]`` (broadcast over the S candidates).
        kind: "l1" (mean absolute error, as V-JEPA 2-AC plans with) or "l2" (mean squared error).
    Returns:
        ``[S]`` energies.
    """
    if goal.dim() == pred.dim() - 1:
        goal = goal.unsqueeze(0)
    if goal.shape[1:] != pred.shape[1:]:
        raise ValueError(f"goal shape {tuple(goal.shape)} does not match predicted latents {tuple(pred.shape)}")
    diff = pred - goal.to(dtype=pred.dtype)
    if kind == "l1":
        per = diff.abs()
    elif kind == "l2":
        per = diff.square()
    else:
        raise ValueError(f"energy kind must be 'l1' or 'l2', got {kind!r}")
    return per.flatten(1).mean(dim=1).float()  # [S]; float32 so costs compare the same on any dtype


def latest_latent(state: Any) -> Tensor:
    """The part of a planner state the energy looks at: ``state.latest`` if it has one, else the state."""
    latest = getattr(state, "latest", None)
    if latest is not None:
        return latest
    if isinstance(state, Tensor):
        return state
    raise TypeError(
        f"cannot read a latent from a state of type {type(state).__name__}: give it a `latest` attribute "
        "or pass your own energy callable"
    )


def make_energy(kind: str = "l1") -> EnergyFn:
    """``energy(state, goal) -> [S]``: ``latent_energy(latest_latent(state), goal, kind)``."""
    if kind not in ("l1", "l2"):
        raise ValueError(f"energy kind must be 'l1' or 'l2', got {kind!r}")

    def energy(state: Any, goal: Tensor) -> Tensor:
        return latent_energy(latest_latent(state), goal, kind)

    return energy


def rate_cost(actions: Tensor, prev_action: Tensor, scale: Tensor) -> Tensor:
    """Mean squared change of consecutive actions, normalised by ``scale`` (the action range).

    Args:
        actions: ``[S, H, A]`` candidate sequences.
        prev_action: ``[A]`` the last commanded action (the first change is measured against it).
        scale: ``[A]`` per-dim normaliser so every dim counts alike.
    Returns:
        ``[S]`` penalties.
    """
    full = torch.cat([prev_action.expand(actions.shape[0], 1, -1), actions], dim=1)  # [S, H+1, A]
    return ((full[:, 1:] - full[:, :-1]) / scale).square().mean(dim=(1, 2))
