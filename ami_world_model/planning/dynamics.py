"""Planner states and the world-model dynamics adapter.

The planner sees only ``dynamics(state, actions [S, A]) -> state``. A state is a tensor batched on dim 0,
or an object with ``expand_batch(S)`` (and, for the default energy, ``latest``). ``WorldModelState`` is
that object for the world model: the last k latent frames plus the k-1 actions taken between them, so a
predictor that conditions on k frames (and their actions) can be stepped one action at a time.

Usage with a backend (or ``WorldModel``), k = ``config.context_frames``::

    dynamics = make_world_model_dynamics(backend.next, k)
    state0 = WorldModelState.from_history(z_hist, a_hist, k)   # z_hist [T, N, D], a_hist [T-1, A]
    result = controller.plan(state0, z_goal, dynamics)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from torch import Tensor

NextFn = Callable[[Tensor, Tensor], Tensor]  # (z [B, T, N, D], actions [B, T, A]) -> [B, N, D]
DynamicsFn = Callable[[Any, Tensor], Any]


@dataclass
class WorldModelState:
    """``z [S, k, N, D]`` latent frames, oldest first; ``actions [S, k-1, A]``: ``actions[:, i]`` was taken
    at frame ``i`` (frame ``i+1`` is its outcome). The candidate action for the newest frame completes them."""

    z: Tensor
    actions: Tensor

    def __post_init__(self) -> None:
        if self.z.dim() != 4 or self.actions.dim() != 3:
            raise ValueError(
                f"WorldModelState needs z [S, k, N, D] and actions [S, k-1, A], got {tuple(self.z.shape)} "
                f"and {tuple(self.actions.shape)}"
            )
        if self.actions.shape[0] != self.z.shape[0] or self.actions.shape[1] != self.z.shape[1] - 1:
            raise ValueError(
                f"WorldModelState: actions {tuple(self.actions.shape)} must be [S, k-1, A] for z "
                f"{tuple(self.z.shape)}"
            )

    @property
    def latest(self) -> Tensor:
        """``[S, N, D]`` the newest latent frame (what the energy compares with the goal)."""
        return self.z[:, -1]

    def expand_batch(self, size: int) -> WorldModelState:
        """Broadcast a batch-1 state to ``size`` candidates (views, no copy)."""
        return WorldModelState(self.z.expand(size, -1, -1, -1), self.actions.expand(size, -1, -1))

    @classmethod
    def from_history(
        cls, z: Tensor, actions: Optional[Tensor], k: int, action_dim: Optional[int] = None
    ) -> WorldModelState:
        """Batch-1 state from the observed history, padded to k frames at the old end.

        Args:
            z: ``[T, N, D]`` (or ``[1, T, N, D]``, or one frame ``[N, D]``) encoded frames, oldest first.
            actions: ``[T-1, A]`` (or ``[1, T-1, A]``) the actions executed between those frames; may be
                None or shorter, then padded.
            k: the predictor's context frames.
            action_dim: A, needed only when ``actions`` is None.
        Returns:
            A state with the last k frames. With fewer than k frames (start of an episode) the oldest frame
            is repeated and missing actions are zeros (the robot held still), the same padding a model sees
            when it is trained on windows clipped at the episode start.
        """
        if z.dim() == 2:
            z = z.unsqueeze(0)
        if z.dim() == 4:
            if z.shape[0] != 1:
                raise ValueError(f"from_history takes one history, got z {tuple(z.shape)}")
            z = z[0]
        if z.dim() != 3 or z.shape[0] < 1:
            raise ValueError(f"from_history: z must be [T, N, D] with T >= 1, got {tuple(z.shape)}")
        if actions is None:
            if action_dim is None:
                raise ValueError("from_history: give actions or action_dim")
            actions = z.new_zeros((0, action_dim))
        if actions.dim() == 3:
            actions = actions[0]
        if k < 1:
            raise ValueError(f"from_history: k must be >= 1, got {k}")
        z = z[-k:]
        need = k - 1
        actions = actions[actions.shape[0] - need:] if need > 0 else actions[:0]
        if z.shape[0] < k:  # repeat the oldest frame
            z = torch.cat([z[:1].expand(k - z.shape[0], -1, -1), z], dim=0)
        if actions.shape[0] < need:  # zero (held still) actions before the first known one
            pad = actions.new_zeros((need - actions.shape[0], actions.shape[1]))
            actions = torch.cat([pad, actions], dim=0)
        return cls(z.unsqueeze(0), actions.to(z.device).unsqueeze(0))


def make_world_model_dynamics(next_fn: NextFn, k: int) -> DynamicsFn:
    """Wrap a backend's ``next(z [B, T, N, D], actions [B, T, A]) -> [B, N, D]`` as planner dynamics.

    The returned ``dynamics(state: WorldModelState, a [S, A]) -> WorldModelState`` predicts the successor
    of the newest frame from all k frames and their actions (the state's k-1 plus the candidate ``a``), then
    slides the window one frame. Proprioceptive states are not predicted, so ``next`` gets none.
    """
    if k < 1:
        raise ValueError(f"make_world_model_dynamics: k must be >= 1, got {k}")

    def dynamics(state: WorldModelState, a: Tensor) -> WorldModelState:
        if state.z.shape[1] != k:
            raise ValueError(f"dynamics built for k={k} frames got a state with {state.z.shape[1]}")
        acts = torch.cat([state.actions, a.to(state.actions.dtype).unsqueeze(1)], dim=1)  # [S, k, A]
        z_next = next_fn(state.z, acts)  # [S, N, D]
        z = torch.cat([state.z[:, 1:], z_next.unsqueeze(1)], dim=1)  # [S, k, N, D]
        return WorldModelState(z, acts[:, 1:])

    return dynamics


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
    for name in ("z", "latest"):
        value = getattr(state, name, None)
        if isinstance(value, Tensor):
            return value
    raise TypeError(f"cannot find a tensor in a planner state of type {type(state).__name__}")
