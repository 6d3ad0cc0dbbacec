"""A scripted expert for held-out trajectories: it reaches, or pushes the block to its goal, with no model.

Used to judge a world model's energy on trajectories that do make progress (``evaluation/energy_quality``):
along them the true distance to the goal falls, and a useful latent energy should fall with it.
Push: come in behind the block with respect to the block-to-goal direction (going around it when on the wrong
side), then push along that direction, steering it every tick, until the block is within ``stop_m``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ami_world_model.sim.cell import BLOCK_HALF_M, TOOL_RADIUS_M, Goal, SimCell


class ScriptedExpert:
    """``act(cell, goal) -> [2]`` planar twist (m/s) towards the goal of ``goal.task``."""

    def __init__(self, push_speed: float = 0.6, standoff_m: float = 0.012) -> None:
        self.push_speed = push_speed  # fraction of the speed limit while in contact (slow pushes stay straight)
        self.standoff_m = standoff_m  # gap behind the block face where the approach ends
        self._pushing = False

    def reset(self) -> None:
        self._pushing = False

    def act(self, cell: SimCell, goal: Goal) -> np.ndarray:
        vmax = cell.config.max_linear_speed_mps
        ee = cell.ee_position()[:2]
        if goal.task == "reach":
            return _towards(ee, goal.ee_position[:2], vmax, cell.config.control_dt_s)
        block = cell.block_position()[:2]
        to_goal = goal.block_position[:2] - block
        u = to_goal / max(1e-9, float(np.linalg.norm(to_goal)))
        behind = block - u * (BLOCK_HALF_M + TOOL_RADIUS_M + self.standoff_m)
        if self._pushing and float(np.linalg.norm(ee - behind)) > 0.03:
            self._pushing = False  # slipped off the block: approach again
        if not self._pushing:
            wrong_side = float(np.dot(ee - block, u)) > -(BLOCK_HALF_M + TOOL_RADIUS_M)
            waypoint = behind - u * 0.025 if wrong_side else behind
            if wrong_side and float(np.linalg.norm(ee - block)) < 0.05:
                perp = np.array([-u[1], u[0]])
                side = 1.0 if float(np.dot(ee - block, perp)) >= 0 else -1.0
                waypoint = ee + perp * side * 0.03 - u * 0.02
            if float(np.linalg.norm(ee - behind)) < 0.01:
                self._pushing = True
            return _towards(ee, waypoint, vmax, cell.config.control_dt_s)
        # Aim through the line behind the block so the push corrects sideways drift.
        target = behind + u * 0.05
        return _towards(ee, target, vmax * self.push_speed, cell.config.control_dt_s)


def _towards(ee: np.ndarray, target: np.ndarray, vmax: float, dt: float) -> np.ndarray:
    v = (target - ee) / dt
    s = float(np.max(np.abs(v)))
    return v / max(1.0, s / vmax)


@dataclass
class ScriptedTrajectory:
    task: str
    seed: int
    images: np.ndarray  # [T+1, H, W, 3] uint8, the frame at the start and after every tick
    goal_image: np.ndarray  # [H, W, 3] uint8
    distances_m: np.ndarray  # [T+1] true distance to the goal per frame
    actions: np.ndarray  # [T, 2]
    success: bool
    block_xy: np.ndarray  # [T+1, 2] block centre per frame

    def first_block_move(self, moved_m: float = 1e-3) -> int:
        """Index of the last frame before the block first moved more than ``moved_m`` (0 if it never did)."""
        moved = np.linalg.norm(self.block_xy - self.block_xy[0], axis=1) > moved_m
        return max(0, int(np.argmax(moved)) - 1) if moved.any() else 0


def scripted_trajectory(
    cell: SimCell,
    task: str,
    seed: int,
    max_steps: int = 80,
    stop_m: Optional[float] = None,
    expert: Optional[ScriptedExpert] = None,
) -> ScriptedTrajectory:
    """Reset ``cell`` from ``seed`` and run the scripted expert until within ``stop_m`` (default: half the
    task's tolerance) or ``max_steps`` ticks; every frame rendered."""
    expert = expert or ScriptedExpert()
    expert.reset()
    cell.reset(seed=seed, task=task)
    goal = cell.goal
    tol = cell.config.reach_tolerance_m if task == "reach" else cell.config.push_tolerance_m
    stop = tol / 2 if stop_m is None else stop_m
    images, dists, acts = [cell.render()], [cell.distance_to_goal()], []
    blocks = [cell.block_position()[:2].copy()]
    for _ in range(max_steps):
        if dists[-1] <= stop:
            break
        a = expert.act(cell, goal)
        cell.apply_twist(*a)
        cell.step()
        acts.append(a)
        images.append(cell.render())
        dists.append(cell.distance_to_goal())
        blocks.append(cell.block_position()[:2].copy())
    cell.stop()
    return ScriptedTrajectory(task, int(seed), np.stack(images), goal.image, np.asarray(dists),
                              np.asarray(acts, dtype=np.float64).reshape(-1, 2), bool(dists[-1] <= tol),
                              np.stack(blocks))
