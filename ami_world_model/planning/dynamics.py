"""Planner states and the world-model dynamics adapter.

The planner sees only ``dynamics(state, actions [S, A]) -> state``. A state is a tensor batched on dim 0,
or an object with ``expand_batch(S)`` (and, for the default energy, ``latest``). ``WorldModelState`` is
that object for the world model: the last k latent frames plus the k-1 actions taken between them, so a
predictor that conditions on k frames (and their actions) can be stepped one action at a time. It and
``make_world_model_dynamics`` are defined in ``models/rollout.py``, the one rollout training uses too.

Usage with a backend (or ``WorldModel``), k = ``config.context_frames``::

    dynamics = make_world_model_dynamics(backend.next, k)
    state0 = WorldModelState.from_history(z_hist, a_hist, k)   # z_hist [T, N, D], a_hist [T-1, A]
    result = controller.plan(state0, z_goal, dynamics)
"""
from __future__ import annotations

from typing import Any, Callable

from torch import Tensor

from ami_world_model.models.pose_dynamics import PoseState, make_pose_dynamics
from ami_world_model.models.rollout import NextFn, WorldModelState, make_world_model_dynamics

__all__ = ["DynamicsFn", "NextFn", "PoseState", "WorldModelState", "expand_state", "first_tensor",
           "make_pose_dynamics", "make_world_model_dynamics", "state_batch"]

DynamicsFn = Callable[[Any, Tensor], Any]


def expand_state(state: Any, size: int) -> Any:
    """Broadcast a batch-1 planner state to ``size`` candidates."""
    if isinstance(state, Tensor):
        return state.expand(size, *state.shape[1:])
    if hasattr(state, "expand_batch"):
        return state.expand_batch(size)
    if isinstance(state, (tuple, list)):
        return type(state)(expand_state(s, size) for s in state)
    raise TypeError(
        f"planner state of type {type(state).__name__} is not a tensor, a tuple of tensors or an object "
        "with expand_batch(size)"
    )


def state_batch(state: Any) -> int:
    """Leading (batch) size of a planner state."""
    return first_tensor(state).shape[0]


def first_tensor(state: Any) -> Tensor:
    """The first tensor inside a state (for its device and batch size)."""
    if isinstance(state, Tensor):
        return state
    if isinstance(state, WorldModelState):
        return state.z
    if isinstance(state, (tuple, list)) and state:
        return first_tensor(state[0])
    for name in ("z", "latest", "positions"):
        value = getattr(state, name, None)
        if isinstance(value, Tensor):
            return value
    raise TypeError(f"cannot find a tensor in a planner state of type {type(state).__name__}")
