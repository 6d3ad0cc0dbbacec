"""The one rollout: step the predictor with k frames of context, then slide the window one frame.

Training (``WorldModel.rollout``, the rollout loss), the planner (``planning.make_world_model_dynamics``) and
the node's one-step surprise all go through ``step``, so what is trained is what is planned.

A ``WorldModelState`` is the window: the last k latent frames, the k-1 actions taken between them, and
(for models that use proprioception) the k frames' states. ``step(next_fn, state, a)`` completes the
actions with ``a`` (the action applied after the newest frame), predicts the newest frame's successor from
all k frames, and returns the window slid by one frame. States are not predicted: the newest one is held.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import Tensor

# (z [B, k, N, D], actions [B, k, A]) -> [B, N, D]; called with states [B, k, S] as a third argument only
# when the window carries states.
NextFn = Callable[..., Tensor]


@dataclass
class WorldModelState:
    """``z [S, k, N, D]`` latent frames, oldest first; ``actions [S, k-1, A]``: ``actions[:, i]`` was taken
    at frame ``i`` (frame ``i+1`` is its outcome). The candidate action for the newest frame completes them.
    ``states [S, k, P]`` (optional): the proprioceptive state of each frame."""

    z: Tensor
    actions: Tensor
    states: Optional[Tensor] = None

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
        if self.states is not None and (self.states.dim() != 3 or self.states.shape[:2] != self.z.shape[:2]):
            raise ValueError(
                f"WorldModelState: states {tuple(self.states.shape)} must be [S, k, P] for z {tuple(self.z.shape)}"
            )

    @property
    def latest(self) -> Tensor:
        """``[S, N, D]`` the newest latent frame (what the energy compares with the goal)."""
        return self.z[:, -1]

    def expand_batch(self, size: int) -> WorldModelState:
        """Broadcast a batch-1 state to ``size`` candidates (views, no copy)."""
        states = None if self.states is None else self.states.expand(size, -1, -1)
        return WorldModelState(self.z.expand(size, -1, -1, -1), self.actions.expand(size, -1, -1), states)

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


def step(next_fn: NextFn, state: WorldModelState, a: Tensor) -> WorldModelState:
    """Apply action ``a [S, A]`` after the newest frame: predict its successor from the k frames and their
    actions, and slide the window one frame (the new state's ``latest`` is the prediction)."""
    acts = torch.cat([state.actions, a.to(state.actions.dtype).unsqueeze(1)], dim=1)  # [S, k, A]
    if state.states is None:
        z_next = next_fn(state.z, acts)  # [S, N, D]
        states = None
    else:
        z_next = next_fn(state.z, acts, state.states)
        states = torch.cat([state.states[:, 1:], state.states[:, -1:]], dim=1)  # hold the newest: [S, k, P]
    z = torch.cat([state.z[:, 1:], z_next.unsqueeze(1)], dim=1)  # [S, k, N, D]
    return WorldModelState(z, acts[:, 1:], states)


def rollout(next_fn: NextFn, state: WorldModelState, actions: Tensor) -> Tensor:
    """``actions [S, H, A]`` applied one after another from ``state`` -> predicted latents ``[S, H, N, D]``."""
    outs = []
    for i in range(actions.shape[1]):
        state = step(next_fn, state, actions[:, i])
        outs.append(state.latest)
    return torch.stack(outs, dim=1)  # [S, H, N, D]


def make_world_model_dynamics(next_fn: NextFn, k: int) -> Callable[[WorldModelState, Tensor], WorldModelState]:
    """Wrap a backend's ``next(z [B, T, N, D], actions [B, T, A]) -> [B, N, D]`` as planner dynamics.

    The returned ``dynamics(state: WorldModelState, a [S, A]) -> WorldModelState`` is ``step`` for windows of
    exactly k frames (the frames the predictor was trained and exported with).
    """
    if k < 1:
        raise ValueError(f"make_world_model_dynamics: k must be >= 1, got {k}")

    def dynamics(state: WorldModelState, a: Tensor) -> WorldModelState:
        if state.z.shape[1] != k:
            raise ValueError(f"dynamics built for k={k} frames got a state with {state.z.shape[1]}")
        return step(next_fn, state, a)

    return dynamics
