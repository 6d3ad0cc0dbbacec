"""The oracle planner: the project's own planner with the simulator's TRUE dynamics and the TRUE task distance
as its energy. It is the upper bound of this planner, horizon and budget: if the oracle cannot push, no world
model will; if it can and the learned model cannot, the representation or the predictor is short, not the search.

The planner (``RecedingHorizonController``, CEM or MPPI as configured) is unchanged. Its state is a tensor of
slot indices ``[S, 1]`` into a ``CellBatch`` of physics copies; ``SimDynamics`` copies each candidate's slot,
holds the candidate twist for one action period and returns the new slots; the energy reads the block's (push)
or the tool's (reach) planar distance to its goal from each slot, in metres.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from ami_world_model.evaluation.failure import EpisodeTrace, classify_failure, count_reasons
from ami_world_model.evaluation.stats import success_summary
from ami_world_model.planning.config import PlannerConfig
from ami_world_model.planning.controller import RecedingHorizonController
from ami_world_model.planning.energy import EnergyFn
from ami_world_model.sim.batch import CellBatch, tool_block_contact
from ami_world_model.sim.cell import SimCell


class SimDynamics:
    """Planner dynamics over copies of ``cell``'s physics: ``(slots [S, 1], twists [S, A]) -> slots [S, 1]``.

    Slot 0 holds the root state (``root_state``); two banks of ``max_samples`` slots alternate as inputs and
    outputs, so a rollout never overwrites the states it reads (the controller reuses the root every iteration).
    """

    def __init__(self, cell: SimCell, max_samples: int, action_dt_s: float) -> None:
        if action_dt_s <= 0:
            raise ValueError(f"action_dt_s must be positive, got {action_dt_s}")
        self.cell = cell
        self.max_samples = int(max_samples)
        self.action_dt_s = float(action_dt_s)
        self.batch = CellBatch(cell, 1 + 2 * self.max_samples)
        self.steps = 0  # candidate-steps simulated (cost accounting)

    def root_state(self) -> Tensor:
        """Copy the cell's current physics into slot 0; returns the batch-1 planner state ``[[0]]``."""
        self.batch.load_from_cell([0])
        return torch.zeros(1, 1, dtype=torch.long)

    def __call__(self, state: Tensor, actions: Tensor) -> Tensor:
        src = state[:, 0].tolist()
        n = len(src)
        if n > self.max_samples:
            raise ValueError(f"SimDynamics was sized for {self.max_samples} candidates, got {n}")
        first_bank = 1 + self.max_samples
        in_a = any(1 <= s < first_bank for s in src)
        base = first_bank if in_a else 1  # write to the bank the inputs are not in
        dst = list(range(base, base + n))
        self.batch.copy(dst, src)
        self.batch.step_twists(dst, actions.detach().cpu().double().numpy(), self.action_dt_s)
        self.steps += n
        return torch.tensor(dst, dtype=torch.long).unsqueeze(1)

    def distance_energy(self, task: str) -> EnergyFn:
        """``energy(slots [S, 1], goal_xy [2]) -> [S]`` metres: block (push) or tool (reach) to the goal."""
        if task not in ("reach", "push"):
            raise ValueError(f"task must be 'reach' or 'push', got {task!r}")
        read = self.batch.block_xy if task == "push" else self.batch.ee_xy

        def energy(state: Tensor, goal: Tensor) -> Tensor:
            xy = torch.from_numpy(read(state[:, 0].tolist()))  # [S, 2]
            return torch.linalg.norm(xy - goal.double().cpu().view(1, 2), dim=1).float()

        return energy


def node_planner_config(**overrides) -> PlannerConfig:
    """The node's planner budget (64 samples x 4 iterations, top 16, H = 3), with ``overrides``."""
    values = dict(num_samples=64, iterations=4, top_k=16, horizon_steps=3)
    values.update(overrides)
    return PlannerConfig(**values)


@dataclass
class OracleEpisode:
    task: str
    seed: int
    success: bool
    initial_distance_m: float
    final_distance_m: float
    steps: int  # control ticks run
    distances_m: List[float]  # at the start, then after every tick
    block_xy: List[List[float]]  # [T+1, 2]
    goal_xy: List[float]  # [2] the block's (push) or the tool's (reach) goal
    touched: bool  # the pusher touched the block at some tick
    stop_reason: str  # "goal_reached" (true distance within tolerance) or "max_steps"
    plan_s: List[float] = field(default_factory=list)  # wall time of each plan() call
    plan_cpu_s: List[float] = field(default_factory=list)  # CPU time of each plan() call (load-independent)
    failure: str = ""

    def trace(self) -> EpisodeTrace:
        return EpisodeTrace(self.task, self.success, self.distances_m, self.stop_reason, self.block_xy,
                            self.goal_xy if self.task == "push" else None, self.touched)


def run_oracle_episode(
    cell: SimCell,
    task: str,
    seed: int,
    cfg: Optional[PlannerConfig] = None,
    action_dt_s: float = 0.3,
    max_steps: int = 80,
    replan_every_ticks: Optional[int] = None,
    stop_on_success: bool = True,
    make_dynamics: Optional[Callable[[SimCell, int, float], SimDynamics]] = None,
) -> OracleEpisode:
    """One episode of the oracle planner on ``cell`` (reset from ``seed``), with a fixed budget (no deadline).

    Args:
        cell: the simulated cell (its config sets tolerances, control period and action limits).
        task: "reach" or "push".
        seed: the episode's start and goal (as ``ami-wm eval`` uses it).
        cfg: the planner (default ``node_planner_config()``).
        action_dt_s: how long each planned action is held (the model's ``action.dt_s``).
        max_steps: control ticks at most.
        replan_every_ticks: plan every this many ticks, holding the first action in between (default: one
            action period, i.e. ``action_dt_s / control_dt_s`` ticks).
        stop_on_success: stop the arm once the true distance is within tolerance (the node's goal_reached),
            then judge success after one more, still, tick.
        make_dynamics: ``(cell, max_samples, action_dt_s) -> SimDynamics`` (default ``SimDynamics``): a
            subclass scores candidates with another energy (``image_oracle.py``).
    Returns:
        An OracleEpisode (with its failure reason).
    """
    cfg = cfg or node_planner_config()
    period = cell.config.control_dt_s
    every = replan_every_ticks or max(1, int(round(action_dt_s / period)))
    spec = cell.action_spec()
    controller = RecedingHorizonController(cfg, spec.low, spec.high, device="cpu")
    dynamics = (make_dynamics or SimDynamics)(cell, cfg.num_samples, action_dt_s)
    energy = dynamics.distance_energy(task)
    cell.reset(seed=seed, task=task)
    goal = cell.goal
    goal_xy = (goal.block_position if task == "push" else goal.ee_position)[:2].astype(np.float64)
    goal_t = torch.from_numpy(goal_xy)
    distances = [cell.distance_to_goal()]
    blocks = [cell.block_position()[:2].tolist()]
    touched, stop, plan_s, plan_cpu = False, "max_steps", [], []
    action = np.zeros(spec.dim)
    steps = 0
    for tick in range(max_steps):
        if tick % every == 0:
            t0, c0 = time.perf_counter(), time.process_time()
            res = controller.plan(dynamics.root_state(), goal_t, dynamics, energy=energy)
            plan_s.append(time.perf_counter() - t0)
            plan_cpu.append(time.process_time() - c0)
            action = res.actions[0].double().numpy()
        cell.apply_twist(*action)
        cell.step()
        steps += 1
        touched |= tool_block_contact(cell)
        distances.append(cell.distance_to_goal())
        blocks.append(cell.block_position()[:2].tolist())
        if stop_on_success and cell.success():
            stop = "goal_reached"
            cell.stop()
            cell.step()  # a still tick: the block must stay within tolerance, not slide through it
            distances[-1] = cell.distance_to_goal()
            blocks[-1] = cell.block_position()[:2].tolist()
            break
    ep = OracleEpisode(task, int(seed), bool(cell.success()), distances[0], distances[-1], steps, distances,
                       blocks, goal_xy.tolist(), bool(touched), stop, plan_s, plan_cpu)
    ep.failure = classify_failure(ep.trace())
    return ep


def summarize_oracle(episodes: Sequence[OracleEpisode]) -> Dict[str, object]:
    """Success with its Wilson 95 % interval, final distances, plan times and failure reasons, for one task."""
    plans = [s for e in episodes for s in e.plan_s]
    cpu = [s for e in episodes for s in e.plan_cpu_s]
    return {
        **{f"success_{k}": v for k, v in success_summary([e.success for e in episodes]).items()},
        "mean_final_distance_m": float(np.mean([e.final_distance_m for e in episodes])) if episodes else math.nan,
        "mean_steps": float(np.mean([e.steps for e in episodes])) if episodes else math.nan,
        "plan_s_p50": float(np.percentile(plans, 50)) if plans else math.nan,
        "plan_s_p95": float(np.percentile(plans, 95)) if plans else math.nan,
        "plan_cpu_s_p50": float(np.percentile(cpu, 50)) if cpu else math.nan,
        "plans": len(plans),
        "failures": count_reasons(e.failure for e in episodes),
        "seeds": [e.seed for e in episodes],
    }


def evaluate_oracle(
    tasks: Sequence[str],
    seeds: Sequence[int],
    cfg: Optional[PlannerConfig] = None,
    action_dt_s: float = 0.3,
    max_steps: int = 80,
    cell: Optional[SimCell] = None,
) -> Dict[str, Dict[str, object]]:
    """``{task: summarize_oracle(...) + {"wall_s"}}`` over ``seeds`` for each task (same seeds as ``ami-wm eval``)."""
    own = cell is None
    cell = cell or SimCell()
    out: Dict[str, Dict[str, object]] = {}
    try:
        for task in tasks:
            t0 = time.perf_counter()
            eps = [run_oracle_episode(cell, task, s, cfg, action_dt_s, max_steps) for s in seeds]
            out[task] = {**summarize_oracle(eps), "wall_s": time.perf_counter() - t0}
    finally:
        if own:
            cell.close()
    return out
