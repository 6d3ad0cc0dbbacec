"""Read-out-space dynamics: where the tool and the objects will be, one command later, in a pushed body's frame.

The latent predictor has to learn contact from whole latent frames. On PushT it is the largest part of the gap
to the simulator planner (benchmarks/pusht/README.md, run 6: 0.12 against 0.30 for a small MLP on the read-out
positions, same eyes and budget). This head is that MLP, with two inductive biases measured there:

- **One recorded control period per step**, the model step's command held through ``substeps`` of them
  (as the arm executes it), rather than one step on the mean of ``substeps`` unheld recorded commands.
- **The pushed body's frame.** ``frame`` names its origin and a heading point. The other objects' positions,
  the state and the command are rotated into that frame about the origin, and the outputs (their
  displacements, the body's displacement and turn, the next state) rotated back. A push learned at one place
  and angle then holds at all of them, which an MLP on world coordinates must learn separately for each.
  The heading point moves rigidly with the origin, so the body keeps its shape over a rollout.
- **Fixed walls, where there are any** (``walls``): the body frame makes the head blind to where it is, and a
  push against a wall ends differently from one in the open. Each wall enters as the vector from the origin to
  it, in the body frame, clipped at ``wall_range``; beyond that range the head is as translation-invariant as
  without walls. On PushT most of the head's error was at the arena's walls (benchmarks/pusht/README.md, run 15).

Positions are the read-out's (metres, ``ReadoutConfig.names`` order); the state is the model's proprioceptive
state (``StateSpec``, e.g. joint velocities: the tool's velocity carries how the last commands move it on).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import torch
from torch import Tensor, nn

from ami_world_model.models.config import PoseDynamicsConfig


def rotate(v: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate ``[B, ..., 2k]`` (x, y) pairs by the angle with ``cos``/``sin`` ``[B]``."""
    pairs = v.unflatten(-1, (-1, 2))
    x, y = pairs[..., 0], pairs[..., 1]  # [B, ..., k]
    c = cos.reshape(-1, *([1] * (x.dim() - 1)))
    s = sin.reshape(-1, *([1] * (x.dim() - 1)))
    return torch.stack([c * x - s * y, s * x + c * y], dim=-1).flatten(-2)


class PoseDynamics(nn.Module):
    def __init__(self, cfg: PoseDynamicsConfig, objects: List[str], state_dim: int, action_dim: int) -> None:
        super().__init__()
        self.cfg, self.state_dim, self.action_dim = cfg, state_dim, action_dim
        self.origin, self.heading = objects.index(cfg.frame[0]), objects.index(cfg.frame[1])
        self.others = [i for i in range(len(objects)) if i not in (self.origin, self.heading)]
        n_in, n_out = cfg.sizes(len(objects), state_dim, action_dim)
        layers: List[nn.Module] = []
        width = n_in
        for _ in range(cfg.depth):
            layers += [nn.Linear(width, cfg.hidden), nn.GELU()]
            width = cfg.hidden
        layers.append(nn.Linear(width, n_out))
        self.net = nn.Sequential(*layers)
        # Non-persistent, from the config (as the read-out's): they never disagree with the checkpoint JSON.
        self.register_buffer("in_mean", torch.tensor(cfg.in_mean or [0.0] * n_in, dtype=torch.float32),
                             persistent=False)
        self.register_buffer("in_std", torch.tensor(cfg.in_std or [1.0] * n_in, dtype=torch.float32),
                             persistent=False)
        self.register_buffer("out_std", torch.tensor(cfg.out_std or [1.0] * n_out, dtype=torch.float32),
                             persistent=False)
        # The walls' surface points and unit normals [W, 2] each, built once rather than per planning step.
        walls = torch.tensor(cfg.walls, dtype=torch.float32).reshape(-1, 4)
        self.register_buffer("wall_points", walls[:, :2].contiguous(), persistent=False)
        self.register_buffer("wall_normals", walls[:, 2:] / walls[:, 2:].norm(dim=1, keepdim=True),
                             persistent=False)

    def frame_of(self, positions: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """The body's origin ``[B, 2]`` and the cos, sin ``[B]`` of its heading."""
        p = positions.unflatten(-1, (-1, 2))
        origin, d = p[:, self.origin], p[:, self.heading] - p[:, self.origin]
        angle = torch.atan2(d[:, 1], d[:, 0])
        return origin, torch.cos(angle), torch.sin(angle)

    def features(self, positions: Tensor, state: Optional[Tensor], action: Tensor) -> Tensor:
        """``[B, F]`` un-normalised features: the other objects relative to the origin, the state and the
        command, all in the body frame."""
        origin, c, s = self.frame_of(positions)
        p = positions.unflatten(-1, (-1, 2))
        rel = rotate((p[:, self.others] - origin[:, None]).flatten(1), c, -s)
        parts = [rel]
        if self.state_dim:
            parts.append(rotate(state, c, -s) if self.cfg.planar_state else state)
        parts.append(rotate(action.to(positions.dtype), c, -s))
        if self.cfg.walls:
            parts.append(rotate(self.wall_vectors(origin), c, -s))
        return torch.cat(parts, dim=1)

    def wall_vectors(self, origin: Tensor) -> Tensor:
        """``[B, 2W]`` from the origin to each wall along its normal (world frame), length clipped at
        ``wall_range``."""
        point, normal = self.wall_points.to(origin.dtype), self.wall_normals.to(origin.dtype)
        gap = ((point[None] - origin[:, None]) * normal[None]).sum(-1)  # [B, W], negative inside
        gap = gap.clamp(min=-self.cfg.wall_range, max=self.cfg.wall_range)
        return (gap[..., None] * normal[None]).flatten(1)

    def targets(self, positions: Tensor, state: Optional[Tensor], nxt: Tensor, next_state: Optional[Tensor]
                ) -> Tensor:
        """``[B, O]`` un-normalised outputs that take (positions, state) to (nxt, next_state): what the
        network is trained to give, in the body frame at the start."""
        origin, c, s = self.frame_of(positions)
        p, q = positions.unflatten(-1, (-1, 2)), nxt.unflatten(-1, (-1, 2))
        moved = rotate((q[:, self.others] - p[:, self.others]).flatten(1), c, -s)
        body = rotate(q[:, self.origin] - origin, c, -s)
        _, c2, s2 = self.frame_of(nxt)
        turn = torch.atan2(s2 * c - c2 * s, c2 * c + s2 * s)  # the heading's change, wrapped to (-pi, pi]
        parts = [moved, body, turn[:, None]]
        if self.state_dim:
            parts.append(rotate(next_state, c, -s) if self.cfg.planar_state else next_state)
        return torch.cat(parts, dim=1)

    def apply(self, positions: Tensor, state: Optional[Tensor], out: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        """Outputs ``[B, O]`` (un-normalised, body frame) -> the next positions and state (world frame)."""
        origin, c, s = self.frame_of(positions)
        p = positions.unflatten(-1, (-1, 2)).clone()
        k = 2 * len(self.others)
        p[:, self.others] = p[:, self.others] + rotate(out[:, :k], c, s).unflatten(-1, (-1, 2))
        new_origin = origin + rotate(out[:, k:k + 2], c, s)
        turn = out[:, k + 2]
        arm = p[:, self.heading] - origin  # the heading point turns rigidly about the origin
        p[:, self.heading] = new_origin + rotate(arm, torch.cos(turn), torch.sin(turn))
        p[:, self.origin] = new_origin
        nxt_state = None
        if self.state_dim:
            tail = out[:, k + 3:]
            nxt_state = rotate(tail, c, s) if self.cfg.planar_state else tail
        return p.flatten(1), nxt_state

    def normalized(self, positions: Tensor, state: Optional[Tensor], action: Tensor) -> Tensor:
        """What the training loss compares: the network's outputs in units of ``out_std``."""
        return self.net((self.features(positions, state, action) - self.in_mean) / self.in_std)

    def forward(self, positions: Tensor, state: Optional[Tensor], action: Tensor
                ) -> Tuple[Tensor, Optional[Tensor]]:
        """One recorded control period: positions ``[B, P]``, state ``[B, S]`` or None, command ``[B, A]``."""
        if self.state_dim and (state is None or state.shape[-1] != self.state_dim):
            got = None if state is None else list(state.shape)
            raise ValueError(f"pose dynamics need the state [B, {self.state_dim}], got {got}")
        return self.apply(positions, state, self.normalized(positions, state, action) * self.out_std)

    def step(self, positions: Tensor, state: Optional[Tensor], action: Tensor) -> Tuple[Tensor, Optional[Tensor]]:
        """One model step: ``substeps`` periods with the command held."""
        for _ in range(self.cfg.substeps):
            positions, state = self(positions, state, action)
        return positions, state


@dataclass
class PoseState:
    """A planner state in read-out space: ``positions [S, P]`` (metres) and ``state [S, S']`` or None."""

    positions: Tensor
    state: Optional[Tensor] = None

    @property
    def latest(self) -> Tensor:
        return self.positions

    def expand_batch(self, size: int) -> PoseState:
        return PoseState(self.positions.expand(size, -1),
                         None if self.state is None else self.state.expand(size, -1))


def make_pose_dynamics(head: PoseDynamics) -> Callable[[PoseState, Tensor], PoseState]:
    """The planner's ``dynamics(state, a [S, A]) -> state`` over the head."""

    def dynamics(state: PoseState, a: Tensor) -> PoseState:
        positions, s = head.step(state.positions, state.state, a)
        return PoseState(positions, s)

    return dynamics
