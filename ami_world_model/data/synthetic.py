"""A tiny generated dataset where actions matter: a coloured square pushed by a 2-D velocity action.

The "agent" square moves by ``action * dt`` (metres, scaled to pixels) and is clipped at the borders; an
optional distractor square drifts on its own (bouncing), so a model must learn which motion the action
causes. Images are 64x64 RGB by default. Used by tests and to make small models quickly; ``SquareWorld``
is also a closed-loop environment (reset / step / render) for planner tests.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ami_world_model.config import ActionSpec, StateSpec
from ami_world_model.data.episodes import Episode, EpisodeSet

AGENT_RGB = (230, 40, 40)
DISTRACTOR_RGB = (40, 90, 230)


@dataclass
class SquareWorldConfig:
    size: int = 64  # image height = width, pixels
    square: int = 16  # agent square side, pixels (one latent cell of the default model)
    max_speed_mps: float = 0.1  # action bound per axis (ActionSpec low/high)
    dt_s: float = 0.1
    px_per_m: float = 800.0  # so a full-speed step moves 8 px (half a latent cell)
    distractor: bool = True
    distractor_speed_px: float = 2.0


class SquareWorld:
    """The environment behind the synthetic data. Position is the agent square's top-left corner in px."""

    def __init__(self, cfg: Optional[SquareWorldConfig] = None, seed: int = 0) -> None:
        self.cfg = cfg or SquareWorldConfig()
        self.rng = np.random.default_rng(seed)
        self.reset()

    @property
    def action_spec(self) -> ActionSpec:
        v = self.cfg.max_speed_mps
        return ActionSpec(kind="twist", names=["linear.x", "linear.y"], low=[-v, -v], high=[v, v],
                          mean=[0.0, 0.0], std=[v / 2, v / 2], dt_s=self.cfg.dt_s)

    @property
    def limit(self) -> float:
        return float(self.cfg.size - self.cfg.square)

    def reset(self, position: Optional[np.ndarray] = None) -> np.ndarray:
        """Random (or given) agent position, random background and distractor; returns the first image."""
        c = self.cfg
        self.pos = (np.asarray(position, dtype=np.float64) if position is not None
                    else self.rng.uniform(0, self.limit, size=2))
        self.bg = self.rng.integers(60, 140, size=3).astype(np.uint8)  # muted, never the agent's red
        self.dpos = self.rng.uniform(0, c.size - 8, size=2)
        ang = self.rng.uniform(0, 2 * np.pi)
        self.dvel = c.distractor_speed_px * np.array([np.cos(ang), np.sin(ang)])
        return self.render()

    def step(self, action: np.ndarray) -> np.ndarray:
        """Apply a velocity action [vx, vy] (m/s; x = image column, y = image row) for dt; returns the image."""
        c = self.cfg
        a = np.clip(np.asarray(action, dtype=np.float64), -c.max_speed_mps, c.max_speed_mps)
        self.pos = np.clip(self.pos + a * c.dt_s * c.px_per_m, 0.0, self.limit)
        if c.distractor:
            self.dpos = self.dpos + self.dvel
            for i in range(2):  # bounce off the borders
                if not 0 <= self.dpos[i] <= c.size - 8:
                    self.dvel[i] = -self.dvel[i]
                    self.dpos[i] = np.clip(self.dpos[i], 0, c.size - 8)
        return self.render()

    def render(self, position: Optional[np.ndarray] = None) -> np.ndarray:
        """[H, W, 3] uint8 image with the agent at ``position`` (default: the current one)."""
        c = self.cfg
        img = np.empty((c.size, c.size, 3), dtype=np.uint8)
        img[:] = self.bg
        if c.distractor:
            dx, dy = np.round(self.dpos).astype(int)
            img[dy:dy + 8, dx:dx + 8] = DISTRACTOR_RGB
        x, y = np.round(self.pos if position is None else position).astype(int)
        img[y:y + c.square, x:x + c.square] = AGENT_RGB
        return img


def make_synthetic(episodes: int = 8, length: int = 32, seed: int = 0, with_states: bool = False,
                   cfg: Optional[SquareWorldConfig] = None, hold_steps: int = 3) -> EpisodeSet:
    """Generate an EpisodeSet of ``episodes`` x ``length`` frames.

    Actions are uniform in the bounds, each held for ``hold_steps`` steps (smooth exploration).
    ``with_states`` adds the agent position (px, normalised to [0, 1]) as proprioceptive state.
    """
    world = SquareWorld(cfg, seed=seed)
    spec = world.action_spec
    v = world.cfg.max_speed_mps
    eps = []
    for _ in range(episodes):
        imgs, acts, states = [world.reset()], [], []
        for t in range(length):
            if t % hold_steps == 0:
                a = world.rng.uniform(-v, v, size=2)
            acts.append(a)
            states.append(world.pos / world.limit)
            if t < length - 1:
                imgs.append(world.step(a))
        eps.append(Episode(
            images=np.stack(imgs), actions=np.asarray(acts, dtype=np.float32),
            states=np.asarray(states, dtype=np.float32) if with_states else None,
            timestamps=np.arange(length, dtype=np.float64) * world.cfg.dt_s,
        ))
    state_spec = (StateSpec(names=["agent.x", "agent.y"], mean=[0.5, 0.5], std=[0.3, 0.3]) if with_states
                  else StateSpec())
    return EpisodeSet(episodes=eps, action_spec=spec, state_spec=state_spec,
                      source={"kind": "synthetic_square", "seed": seed, "episodes": episodes, "length": length})
