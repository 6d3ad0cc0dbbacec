"""Exploration for data collection: smooth random motion, point-to-point moves and scripted pushes.

An episode is a chain of segments of a few steps each; every segment is one of
  - "wander": Ornstein-Uhlenbeck velocity noise (smooth, covers the whole workspace),
  - "reach": move to a random point with a little noise (straight, purposeful motion),
  - "push": get behind the block w.r.t. a random direction, then push it (so the data covers contact).
Actions are planar tool velocities (linear.x, linear.y) in m/s, within the cell's action limits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from ami_world_model.sim.cell import BLOCK_HALF_M, TOOL_RADIUS_M, SimCell


@dataclass
class ExplorationConfig:
    mode_weights: List[float] = field(default_factory=lambda: [0.35, 0.25, 0.4])  # wander, reach, push
    segment_steps: List[int] = field(default_factory=lambda: [6, 16])  # segment length range
    ou_theta: float = 1.5  # 1/s, pull of the OU velocity back to zero
    ou_sigma: float = 0.12  # m/s/sqrt(s), OU noise scale
    noise_mps: float = 0.015  # noise added to scripted actions


class ExplorationPolicy:
    """Stateful policy: ``reset(cell, rng)`` at each episode start, then ``act(cell)`` every control period."""

    MODES = ("wander", "reach", "push")

    def __init__(self, config: Optional[ExplorationConfig] = None) -> None:
        self.config = config or ExplorationConfig()
        self.rng = np.random.default_rng(0)
        self._vel = np.zeros(2)
        self._mode = "wander"
        self._left = 0
        self._target = np.zeros(2)
        self._dir = np.zeros(2)
        self._phase = "approach"
        self.mode_counts = {m: 0 for m in self.MODES}  # steps per mode, for the collection report

    def reset(self, cell: SimCell, rng: np.random.Generator) -> None:
        self.rng = rng
        self._vel = np.zeros(2)
        self._left = 0

    def _new_segment(self, cell: SimCell) -> None:
        w = np.asarray(self.config.mode_weights, dtype=np.float64)
        self._mode = self.MODES[int(self.rng.choice(3, p=w / w.sum()))]
        lo, hi = self.config.segment_steps
        self._left = int(self.rng.integers(lo, hi + 1))
        x0, x1, y0, y1 = cell.config.sample_area
        self._target = np.array([self.rng.uniform(x0, x1), self.rng.uniform(y0, y1)])
        a = self.rng.uniform(-math.pi, math.pi)
        self._dir = np.array([math.cos(a), math.sin(a)])
        self._phase = "approach"
        if self._mode == "push":
            self._left += 8  # approaching takes a few steps before contact

    def act(self, cell: SimCell) -> np.ndarray:
        """The next action [2] (m/s)."""
        if self._left <= 0:
            self._new_segment(cell)
        self._left -= 1
        self.mode_counts[self._mode] += 1
        vmax = cell.config.max_linear_speed_mps
        ee = cell.ee_position()[:2]
        if self._mode == "wander":
            c, dt = self.config, cell.config.control_dt_s
            self._vel += -c.ou_theta * self._vel * dt + c.ou_sigma * math.sqrt(dt) * self.rng.normal(size=2)
            # Drift back when outside the sampling area so the fence does not swallow whole segments.
            x0, x1, y0, y1 = cell.config.sample_area
            centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
            if not (x0 <= ee[0] <= x1 and y0 <= ee[1] <= y1):
                self._vel += 0.3 * (centre - ee) / max(1e-6, float(np.linalg.norm(centre - ee))) * vmax
            v = self._vel
        elif self._mode == "reach":
            v = self._towards(ee, self._target, vmax)
        else:
            v = self._push(cell, ee, vmax)
        v = v + self.config.noise_mps * self.rng.normal(size=2) * (self._mode != "wander")
        v = np.clip(v, -vmax, vmax)
        if self._mode == "wander":
            self._vel = v.copy()
        return v.astype(np.float64)

    @staticmethod
    def _towards(ee: np.ndarray, target: np.ndarray, vmax: float, dt: float = 0.1) -> np.ndarray:
        v = (target - ee) / dt
        s = float(np.max(np.abs(v)))
        return v / max(1.0, s / vmax)

    def _push(self, cell: SimCell, ee: np.ndarray, vmax: float) -> np.ndarray:
        block = cell.block_position()[:2]
        u = self._dir
        behind = block - u * (BLOCK_HALF_M + TOOL_RADIUS_M + 0.012)
        if self._phase == "approach":
            # Come in from further back when on the wrong side, so the tool goes around, not through, the block.
            wrong_side = float(np.dot(ee - block, u)) > -(BLOCK_HALF_M + TOOL_RADIUS_M)
            waypoint = behind - u * 0.025 if wrong_side else behind
            if wrong_side and np.linalg.norm(ee - block) < 0.05:
                # Sidestep perpendicular to u, away from the block.
                perp = np.array([-u[1], u[0]])
                side = 1.0 if float(np.dot(ee - block, perp)) >= 0 else -1.0
                waypoint = ee + perp * side * 0.03 - u * 0.02
            if np.linalg.norm(ee - behind) < 0.012:
                self._phase = "push"
            return self._towards(ee, waypoint, vmax)
        return self._towards(ee, ee + u * 0.05, vmax * float(self.rng.uniform(0.5, 1.0)))
