"""Energies: how far a predicted latent is from the goal latent (lower is better).

``latent_energy`` is the distance itself (or, for a model with a read-out head, the weighted distance of the
positions it reads out of the latent: ``make_energy("readout", ...)``); ``make_energy`` turns a config choice into the
``energy(state, goal) -> [S]`` callable the planner calls after each predicted step. States may be plain
tensors ``[S, ...]`` or objects with a ``latest`` attribute (e.g. ``WorldModelState``, whose ``latest`` is
the newest latent frame ``[S, N, D]``): the energy compares ``latest`` with the goal.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

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


def resolve_energy_kind(kind: str, has_readout: bool) -> str:
    """"auto" -> "readout" when the model has a read-out head, else "l1"; "readout" without one is an error."""
    if kind == "auto":
        return "readout" if has_readout else "l1"
    if kind == "readout" and not has_readout:
        raise ValueError("energy 'readout' needs a model with a read-out head (trained with --pose-topic); "
                         "this one has none: use 'auto', 'l1' or 'l2'")
    if kind not in ("l1", "l2", "readout"):
        raise ValueError(f"energy kind must be 'auto', 'l1', 'l2' or 'readout', got {kind!r}")
    return kind


def resolve_dynamics_kind(kind: str, has_pose_dynamics: bool, energy_kind: str) -> str:
    """"auto" -> "pose" when the model has the pose-dynamics head, else "latent". "pose" without the head, or
    with an energy other than the read-out distance it plans on, is an error."""
    if kind == "auto":
        kind = "pose" if has_pose_dynamics and energy_kind == "readout" else "latent"
    if kind == "pose" and not has_pose_dynamics:
        raise ValueError("planner.dynamics 'pose' needs a model trained with --pose-dynamics-frame; this one has "
                         "no pose-dynamics head: use 'auto' or 'latent'")
    if kind == "pose" and energy_kind != "readout":
        raise ValueError(f"planner.dynamics 'pose' plans on the read-out positions, so its energy is their "
                         f"distance; planner.energy {energy_kind!r} asks for latents: use 'auto' or 'readout'")
    if kind not in ("latent", "pose"):
        raise ValueError(f"planner.dynamics must be 'auto', 'latent' or 'pose', got {kind!r}")
    return kind


def make_energy(kind: str = "l1", readout: Optional[Any] = None) -> EnergyFn:
    """``energy(state, goal) -> [S]`` on the newest predicted latent.

    "l1" / "l2": ``latent_energy`` to the goal latent. "readout": ``readout.distance(readout(latent),
    readout(goal))``, the weighted planar distance (metres) of the positions a read-out head
    (``models/readout.Readout``: latents [S,N,D] -> [S,P], and ``distance``) reads. "auto": "readout" when a
    head is given, else "l1".
    """
    kind = resolve_energy_kind(kind, readout is not None)
    if kind == "readout":
        assert readout is not None

        def readout_energy(state: Any, goal: Tensor) -> Tensor:
            z = latest_latent(state)
            goal_z = goal.unsqueeze(0) if goal.dim() == z.dim() - 1 else goal
            if goal_z.shape[1:] != z.shape[1:]:
                raise ValueError(f"goal shape {tuple(goal.shape)} does not match predicted latents {tuple(z.shape)}")
            return readout.distance(readout(z), readout(goal_z[:1]).reshape(-1)).float()  # [S]

        return readout_energy

    def energy(state: Any, goal: Tensor) -> Tensor:
        return latent_energy(latest_latent(state), goal, kind)

    return energy


def make_pose_energy(readout: Any) -> EnergyFn:
    """``energy(state, goal) -> [S]`` for planning in read-out space (``models/pose_dynamics.PoseState``):
    the read-out head's weighted planar distance (metres) of the predicted positions to the goal's ``[P]``."""

    def pose_energy(state: Any, goal: Tensor) -> Tensor:
        positions = latest_latent(state)
        if positions.dim() != 2 or goal.numel() != positions.shape[1]:
            raise ValueError(f"pose energy: positions {tuple(positions.shape)} and goal {tuple(goal.shape)} "
                             "must be [S, P] and [P]")
        return readout.distance(positions, goal.reshape(-1).to(positions.dtype)).float()

    return pose_energy


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
