"""Planner budget auto-sizing: pick samples and iterations so one tick's search fits its deadline.

At configure time, time one batched rollout (S candidates over H steps, what one CEM/MPPI iteration costs) and
choose the largest search that fits ``deadline_s = period * planner_deadline_fraction``: a slower CPU gets a
smaller search instead of late commands, a faster one keeps the configured maximum. Samples are cut before
iterations (down to ``min_samples``): iterations are what refines a plan, and a warm-started CEM with fewer
samples still converges, while one iteration is plain random shooting. ``choose_budget`` is pure given its
timing callable, so tests inject a slow rollout instead of measuring wall time.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, Optional

import torch
from torch import Tensor

from ami_world_model.planning.dynamics import DynamicsFn, expand_state, first_tensor
from ami_world_model.planning.energy import EnergyFn, make_energy

RolloutTimeFn = Callable[[int], float]  # S -> seconds of one batched rollout of S candidates


@dataclass(frozen=True)
class BudgetChoice:
    """What was chosen and why (log it, put it in /diagnostics)."""

    num_samples: int
    iterations: int
    iteration_s: float  # measured seconds of one batched rollout at num_samples
    tick_s: float  # predicted planning time of a tick: iterations * iteration_s + overhead_s
    deadline_s: float
    fits: bool  # False: even min_samples x min_iterations overruns (the smallest search is returned)
    reduced: bool  # True when the choice is below the configured maximum

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


def choose_budget(
    rollout_time: RolloutTimeFn,
    deadline_s: float,
    max_samples: int,
    max_iterations: int,
    min_samples: int = 8,
    min_iterations: int = 1,
    overhead_s: float = 0.0,
    headroom: float = 0.9,
) -> BudgetChoice:
    """The largest search (samples first, then iterations) whose predicted tick fits the deadline.

    Args:
        rollout_time: ``S -> seconds`` of one batched rollout of S candidates over the horizon (assumed not to
            decrease with S; called O(log max_samples) times, each S at most once).
        deadline_s: the planner's wall-time budget per tick (period x planner_deadline_fraction).
        max_samples, max_iterations: the configured search (never exceeded).
        min_samples: the fewest samples worth running (e.g. 2 x top_k so CEM still selects elites).
        min_iterations: the fewest iterations (the controller always runs at least one).
        overhead_s: per-tick work outside the search (encoding the frame, the one-step prediction).
        headroom: fraction of the deadline the search may fill (timing jitter, the controller's own overhead).
    Returns:
        A BudgetChoice.
    """
    if not (math.isfinite(deadline_s) and deadline_s > 0):
        raise ValueError(f"deadline_s must be positive and finite, got {deadline_s}")
    if not 0 < headroom <= 1:
        raise ValueError(f"headroom must be in (0, 1], got {headroom}")
    if not (2 <= min_samples <= max_samples and 1 <= min_iterations <= max_iterations):
        raise ValueError(f"need 2 <= min_samples ({min_samples}) <= max_samples ({max_samples}) and "
                         f"1 <= min_iterations ({min_iterations}) <= max_iterations ({max_iterations})")
    if not (math.isfinite(overhead_s) and overhead_s >= 0):
        raise ValueError(f"overhead_s must be >= 0, got {overhead_s}")
    cache: Dict[int, float] = {}

    def t(s: int) -> float:
        if s not in cache:
            value = float(rollout_time(s))
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"rollout_time({s}) returned {value}: needs a finite time >= 0")
            cache[s] = value
        return cache[s]

    budget = deadline_s * headroom - overhead_s

    def choice(s: int, it: int, fits: bool) -> BudgetChoice:
        return BudgetChoice(s, it, t(s), it * t(s) + overhead_s, deadline_s, fits,
                            s < max_samples or it < max_iterations)

    if max_iterations * t(max_samples) <= budget:
        return choice(max_samples, max_iterations, True)
    if max_iterations * t(min_samples) <= budget:
        lo, hi = min_samples, max_samples  # invariant: lo fits, hi does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if max_iterations * t(mid) <= budget else (lo, mid)
        return choice(lo, max_iterations, True)
    per = t(min_samples)
    fit_it = int(budget // per) if per > 0 and budget > 0 else 0
    iterations = min(max_iterations, max(min_iterations, fit_it))
    return choice(min_samples, iterations, fit_it >= min_iterations)


def make_rollout_timer(
    rollout: Callable[[int], Any],
    repeats: int = 3,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> RolloutTimeFn:
    """``S -> median seconds`` of ``rollout(S)`` over ``repeats`` runs after ``warmup`` untimed ones.

    ``clock`` is injectable so tests drive it with a fake clock."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats}, {warmup}")

    def timed(num_samples: int) -> float:
        for _ in range(warmup):
            rollout(num_samples)
        times = []
        for _ in range(repeats):
            t0 = clock()
            rollout(num_samples)
            times.append(clock() - t0)
        return statistics.median(times)

    return timed


def make_planner_rollout(
    dynamics: DynamicsFn,
    state0: Any,
    goal: Tensor,
    horizon_steps: int,
    action_dim: int,
    energy: Optional[EnergyFn] = None,
) -> Callable[[int], Tensor]:
    """``S -> energies [S]``: one batched rollout of S zero-action candidates from the batch-1 ``state0`` over
    ``horizon_steps``, scored by ``energy`` (default L1): what one planner iteration spends in the model."""
    energy_fn = energy or make_energy("l1")
    device = first_tensor(state0).device

    @torch.no_grad()
    def rollout(num_samples: int) -> Tensor:
        state = expand_state(state0, num_samples)
        actions = torch.zeros(num_samples, action_dim, device=device)
        for _ in range(horizon_steps):
            state = dynamics(state, actions)
        return energy_fn(state, goal)

    return rollout
