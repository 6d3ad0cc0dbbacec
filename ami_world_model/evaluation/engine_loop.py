"""A fast, deterministic closed loop without ROS: the planner node's model side driving the simulated cell.

Per control tick, as ``ami-wm eval``'s lockstep harness and the planner node do it:
  1. the cell renders the frame (``to_model_input``, as the node converts camera images);
  2. ``PlanningEngine.step`` encodes it and plans, with a FIXED budget (no wall-clock deadline: every
     iteration runs, so the answer is the same on any machine);
  3. the node's ``SafetySupervisor.after_plan`` may latch a stop (goal reached, unsure); then the arm stops
     and the episode ends, as in the harness;
  4. otherwise ``safety.clamp_command`` (the node's velocity/acceleration limits) gives the command, the
     engine records it (``record_sent``), and the cell runs one control period: one servo tick with the
     previous command (the command acts one servo tick after its frame in lockstep), then the rest with
     the new one.
Success is judged at the end of the episode (``max_steps`` ticks or a latched stop), within the cell's
tolerance. Every failed episode gets one reason (``evaluation/failure.py``), every rate a Wilson interval.

The tick time reported here is the engine's encode + plan wall time at the fixed budget (what the node's
tick costs on this machine without the message conversion), not the end-to-end ROS latency.

CLI: ``python -m ami_world_model.evaluation.engine_loop --checkpoint models/default --task all --episodes 20``.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ami_world_model.evaluation.failure import EpisodeTrace, classify_failure, count_reasons
from ami_world_model.evaluation.stats import format_rate, success_summary

TASKS = ("reach", "push")
FIXED_BUDGET_DEADLINE_S = 1e6  # "no deadline": the planner runs all its iterations


@dataclass
class LoopEpisode:
    task: str
    seed: int
    success: bool
    initial_distance_m: float
    final_distance_m: float
    steps: int
    stop_reason: str  # the latched stop ("goal_reached", "unsure_no_progress", ...) or "max_steps"
    failure: str
    distances_m: List[float] = field(default_factory=list)  # at the start, then after every tick
    tick_ms: List[float] = field(default_factory=list)  # engine encode + plan per tick
    touched: bool = False
    reached: bool = False  # within tolerance at some tick


def _node_config(checkpoint: Path, backend: str, params: Optional[Dict[str, Any]]):
    from ami_world_model.node_config import PlannerNodeConfig

    values: Dict[str, Any] = {"checkpoint": str(checkpoint), "backend": backend}
    values.update(params or {})
    return PlannerNodeConfig.from_params(values)


class EngineLoop:
    """One PlanningEngine + supervisor + SimCell; ``run_episode(task, seed)`` runs one episode."""

    def __init__(self, checkpoint: Path, backend: str = "torch", params: Optional[Dict[str, Any]] = None,
                 max_steps: int = 80, randomize: bool = False) -> None:
        from ami_world_model.control.engine import PlanningEngine
        from ami_world_model.safety import SafetyLimits, SafetySupervisor, SupervisorConfig
        from ami_world_model.sim.cell import SimCell
        from ami_world_model.sim.config import SimConfig

        self.cfg = _node_config(checkpoint, backend, params)
        self.engine = PlanningEngine(self.cfg, checkpoint)
        self.engine.warm_up()
        if self.engine.uses_state:
            raise ValueError("engine_loop does not feed joint states yet; this checkpoint needs them")
        wm = self.engine.wm_config
        self.h, self.w = wm.image.height, wm.image.width
        self.period = self.cfg.control_period_s
        self.cell = SimCell(SimConfig(image_height=self.h, image_width=self.w, control_dt_s=self.period,
                                      randomize=randomize))
        self.sup = SafetySupervisor(SupervisorConfig.from_node(self.cfg, False, self.engine.energy_kind == "readout"),
                                   enabled=True)
        self.limits = SafetyLimits(self.engine.velocity_limits(), self.engine.accel_limits())
        self.max_steps = int(max_steps)

    def _frame(self, rgb: np.ndarray) -> np.ndarray:
        from ami_world_model.data.image_decoding import to_model_input

        return to_model_input(rgb, self.h, self.w, self.engine.crop)

    def run_episode(self, task: str, seed: int) -> LoopEpisode:
        from ami_world_model.safety import PLAN, clamp_command
        from ami_world_model.sim.batch import tool_block_contact

        cell, engine, sup = self.cell, self.engine, self.sup
        cell.reset(seed=seed, task=task)
        goal = cell.goal
        engine.set_goal(self._frame(goal.image))
        sup.set_goal(True)  # a new goal clears latched stops
        sup.motion_since_zero = False
        prev = [0.0] * engine.action_dim
        servo_dt = cell.config.servo_dt_s
        distances, blocks = [cell.distance_to_goal(goal)], [cell.block_position()[:2].tolist()]
        tick_ms: List[float] = []
        stop, touched, steps = "max_steps", False, 0
        for _ in range(self.max_steps):
            t0 = time.perf_counter()
            res = engine.step(self._frame(cell.render()), None, FIXED_BUDGET_DEADLINE_S)
            tick_ms.append((time.perf_counter() - t0) * 1e3)
            decision = sup.after_plan(res.current_energy, res.planned_energy, res.do_nothing_energy,
                                      res.surprise_ratio)
            if decision.action != PLAN:  # latched: the node sends one zero, the harness ends the episode
                cell.stop()
                cell.step(servo_dt)
                stop = decision.reason.value
                distances.append(cell.distance_to_goal(goal))
                blocks.append(cell.block_position()[:2].tolist())
                break
            cmd = clamp_command(res.action, prev, self.period, self.limits)
            engine.record_sent(cmd)
            cell.step(servo_dt)  # the previous command still acts for one servo tick
            cell.apply_twist(cmd[0], cmd[1], cmd[2] if len(cmd) > 2 else 0.0)
            cell.step(self.period - servo_dt)
            prev = cmd
            steps += 1
            touched |= tool_block_contact(cell)
            distances.append(cell.distance_to_goal(goal))
            blocks.append(cell.block_position()[:2].tolist())
        success = bool(cell.success(goal))
        trace = EpisodeTrace(task, success, distances, stop, blocks,
                             goal.block_position[:2].tolist() if task == "push" else None, touched)
        tol = cell.config.reach_tolerance_m if task == "reach" else cell.config.push_tolerance_m
        return LoopEpisode(task, int(seed), success, distances[0], distances[-1], steps, stop,
                           classify_failure(trace), distances, tick_ms, touched, min(distances) <= tol)

    def close(self) -> None:
        self.engine.close()
        self.cell.close()


def summarize(episodes: Sequence[LoopEpisode]) -> Dict[str, Any]:
    """Success with its Wilson interval, distances, tick times and failure reasons for one task."""
    ticks = [t for e in episodes for t in e.tick_ms]
    return {
        **{f"success_{k}": v for k, v in success_summary([e.success for e in episodes]).items()},
        "mean_final_distance_m": float(np.mean([e.final_distance_m for e in episodes])) if episodes else math.nan,
        "mean_steps": float(np.mean([e.steps for e in episodes])) if episodes else math.nan,
        # within tolerance at some tick (the goal was reached, maybe not held): "got there" vs "stayed there"
        "reached_at_some_tick": int(sum(e.reached for e in episodes)),
        "tick_ms_p50": float(np.percentile(ticks, 50)) if ticks else math.nan,
        "tick_ms_p95": float(np.percentile(ticks, 95)) if ticks else math.nan,
        "failures": count_reasons(e.failure for e in episodes),
        "stop_reasons": {r: sum(e.stop_reason == r for e in episodes) for r in sorted({e.stop_reason
                                                                                        for e in episodes})},
        "seeds": [e.seed for e in episodes],
    }


def evaluate(checkpoint: Path, tasks: Sequence[str], seeds: Sequence[int], backend: str = "torch",
             params: Optional[Dict[str, Any]] = None, max_steps: int = 80, randomize: bool = False,
             progress: bool = False) -> Dict[str, Any]:
    """``{task: summary + {"episodes": [...]}}`` over ``seeds`` for each task, one engine for all."""
    loop = EngineLoop(checkpoint, backend, params, max_steps, randomize)
    out: Dict[str, Any] = {}
    try:
        for task in tasks:
            eps = []
            for s in seeds:
                ep = loop.run_episode(task, s)
                eps.append(ep)
                if progress:
                    print(f"  {task:<5} seed {s:<6} {'success' if ep.success else 'fail':<7} final "
                          f"{ep.final_distance_m:.3f} m (start {ep.initial_distance_m:.3f}) {ep.steps:>3} "
                          f"ticks, {ep.stop_reason} / {ep.failure}", file=sys.stderr, flush=True)
            out[task] = {**summarize(eps), "episodes": [
                {"seed": e.seed, "success": e.success, "final_distance_m": e.final_distance_m,
                 "min_distance_m": min(e.distances_m), "steps": e.steps, "stop_reason": e.stop_reason,
                 "failure": e.failure} for e in eps]}
    finally:
        loop.close()
    return out


def main(argv: Optional[List[str]] = None) -> int:
    import torch
    import yaml

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", default="models/default")
    p.add_argument("--task", choices=[*TASKS, "all"], default="all")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--seed", type=int, default=100_000, help="episode i uses seed S+i (held out: >= 100000)")
    p.add_argument("--backend", default="torch")
    p.add_argument("--max-steps", type=int, default=80)
    p.add_argument("--randomize", action="store_true")
    p.add_argument("--threads", type=int, default=1, help="torch threads (fixed: the tick time depends on it)")
    p.add_argument("--param", action="append", default=[], metavar="NAME:=VALUE",
                   help="planner_node parameter override (YAML value), repeatable")
    p.add_argument("--out", default="", help="write the JSON here too")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    params = {}
    for item in args.param:
        k, _, v = item.partition(":=")
        params[k.strip()] = yaml.safe_load(v)
    tasks = list(TASKS) if args.task == "all" else [args.task]
    from ami_world_model.node_config import resolve_checkpoint

    t0 = time.perf_counter()
    res = evaluate(resolve_checkpoint(args.checkpoint), tasks, range(args.seed, args.seed + args.episodes),
                   args.backend, params, args.max_steps, args.randomize, args.progress)
    res["wall_s"] = time.perf_counter() - t0
    for task in tasks:
        s = res[task]
        print(f"{task:<5} {format_rate({k[8:]: v for k, v in s.items() if k.startswith('success_')}):<16} "
              f"final {s['mean_final_distance_m']:.3f} m, tick p95 {s['tick_ms_p95']:.1f} ms, "
              f"failures { {k: v for k, v in s['failures'].items() if v} }", file=sys.stderr)
    text = json.dumps(res, indent=1)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
