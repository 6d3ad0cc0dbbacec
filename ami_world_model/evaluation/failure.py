"""Why an episode failed, from its trace alone (no sim, no ROS): one reason per episode.

Reasons, checked in this order (the first that applies names the episode):
  - ``success``: within tolerance at the end;
  - ``never_touched_block`` (push): the tool never reached the block and the block did not move;
  - ``wrong_way``: the block (push) or the tool (reach) moved, but away from the goal: for push, the block's
    net displacement points more than ``wrong_way_deg`` from the start-to-goal direction; for both tasks,
    the episode ended further from the goal than it started;
  - ``stopped_unsure``: the planner latched an "unsure" stop (no progress, surprise);
  - ``false_goal_reached``: the planner latched goal_reached away from the goal (its energy said "there");
  - ``ran_out_of_ticks``: the episode used all its ticks without getting there;
  - ``error``: any other stop (model error, a safety stop).
Touching is the sim's tool-block contact when the trace has it, else the closest tool-block centre distance,
else (neither recorded) whether the block moved at all.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Sequence

import numpy as np

SUCCESS = "success"
NEVER_TOUCHED = "never_touched_block"
WRONG_WAY = "wrong_way"
STOPPED_UNSURE = "stopped_unsure"
FALSE_GOAL = "false_goal_reached"
OUT_OF_TICKS = "ran_out_of_ticks"
ERROR = "error"
REASONS = (SUCCESS, NEVER_TOUCHED, WRONG_WAY, STOPPED_UNSURE, FALSE_GOAL, OUT_OF_TICKS, ERROR)


@dataclass
class EpisodeTrace:
    """What the classifier reads from one episode."""

    task: str  # "reach" or "push"
    success: bool
    distances_m: Sequence[float]  # distance to the goal at the start, then after every tick
    stop_reason: str = "max_steps"  # the planner's latched stop ("unsure_no_progress", ...) or "max_steps"
    block_xy: Optional[Sequence[Sequence[float]]] = None  # [T+1, 2] block centre per tick (push)
    goal_xy: Optional[Sequence[float]] = None  # [2] where the block should go (push)
    touched: Optional[bool] = None  # the tool and block were in contact at some tick (sim contacts)
    min_tool_block_m: Optional[float] = None  # closest tool-to-block centre distance over the episode


@dataclass
class FailureThresholds:
    moved_m: float = 0.005  # the block counts as moved beyond this net displacement
    contact_m: float = 0.036  # tool-block centre distance of a face contact (block half 0.02 + tool 0.014 + 2 mm)
    wrong_way_deg: float = 60.0  # displacement further than this from the goal direction is the wrong way


def classify_failure(trace: EpisodeTrace, thresholds: Optional[FailureThresholds] = None) -> str:
    """One of ``REASONS`` for the episode (see the module docstring for the rules and their order)."""
    th = thresholds or FailureThresholds()
    if trace.task not in ("reach", "push"):
        raise ValueError(f"task must be 'reach' or 'push', got {trace.task!r}")
    if trace.success:
        return SUCCESS
    dist = np.asarray(trace.distances_m, dtype=np.float64)
    if dist.ndim != 1 or dist.size == 0 or not np.isfinite(dist).all():
        raise ValueError("distances_m must be a non-empty sequence of finite distances")
    if trace.task == "push" and trace.block_xy is not None:
        block = np.asarray(trace.block_xy, dtype=np.float64)
        if block.ndim != 2 or block.shape[1] < 2 or block.shape[0] < 1:
            raise ValueError(f"block_xy must be [T, 2], got shape {block.shape}")
        disp = block[-1, :2] - block[0, :2]
        moved = float(np.linalg.norm(disp)) >= th.moved_m
        if not moved and not _touched(trace, th, block):
            return NEVER_TOUCHED
        if moved and trace.goal_xy is not None:
            to_goal = np.asarray(trace.goal_xy, dtype=np.float64)[:2] - block[0, :2]
            norm = float(np.linalg.norm(to_goal) * np.linalg.norm(disp))
            if norm > 0 and float(np.dot(disp, to_goal)) / norm < math.cos(math.radians(th.wrong_way_deg)):
                return WRONG_WAY
    if dist[-1] > dist[0]:
        return WRONG_WAY
    reason = trace.stop_reason or "max_steps"
    if reason.startswith("unsure"):
        return STOPPED_UNSURE
    if reason == "goal_reached":
        return FALSE_GOAL
    if reason in ("max_steps", "commanding", "disabled"):
        return OUT_OF_TICKS
    return ERROR


def _touched(trace: EpisodeTrace, th: FailureThresholds, block: np.ndarray) -> bool:
    if trace.touched is not None:
        return bool(trace.touched)
    if trace.min_tool_block_m is not None:
        return float(trace.min_tool_block_m) <= th.contact_m
    # Nothing about the tool recorded: a block that never left its place was not pushed.
    return bool(np.max(np.linalg.norm(block[:, :2] - block[0, :2], axis=1)) >= th.moved_m)


def count_reasons(reasons: Iterable[str]) -> Dict[str, int]:
    """Every reason in ``REASONS`` with its count (zeros included, so tables have fixed columns)."""
    counts = Counter(reasons)
    unknown = set(counts) - set(REASONS)
    if unknown:
        raise ValueError(f"unknown failure reasons {sorted(unknown)}; expected {REASONS}")
    return {r: int(counts.get(r, 0)) for r in REASONS}
