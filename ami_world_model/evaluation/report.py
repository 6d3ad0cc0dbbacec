"""Summaries, plots and GIFs of closed-loop episodes (no ROS, no sim: plain records in, files out)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np


@dataclass
class EpisodeRecord:
    task: str
    policy: str  # "planner" or "random"
    seed: int
    success: bool
    final_distance_m: float
    initial_distance_m: float
    steps: int
    distances_m: List[float] = field(default_factory=list)  # distance to goal after every control tick
    tick_latency_ms: List[float] = field(default_factory=list)  # planner: image stamp -> command received
    stop_reason: str = ""
    plan_iterations: List[int] = field(default_factory=list)  # planner optimiser iterations per tick
    commands_received: int = 0  # twist commands the sim received during the episode (planner or random)
    frames: Optional[List[np.ndarray]] = None  # [H, 2W, 3] uint8 (current | goal), only for GIF episodes
    mode: str = ""  # planner: "fixed" or "deadline" (closed_loop.MODES); random: ""
    block_xy: Optional[List[List[float]]] = None  # push: [T+1, 2] block centre at the start and after each tick
    goal_xy: Optional[List[float]] = None  # push: [2] where the block should go
    touched: Optional[bool] = None  # push: tool-block contact seen at a tick (None: contacts not recorded)
    min_tool_block_m: Optional[float] = None  # push: closest tool-to-block centre distance over the episode
    failure: str = ""  # the failure reason (evaluation/failure.py), "success" when it succeeded


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else float("nan")


def summarize(task: str, records: List[EpisodeRecord]) -> Dict[str, object]:
    """One JSON-able object: the planner and the random baseline side by side, measured in the same run."""
    planner = [r for r in records if r.policy == "planner"]
    random = [r for r in records if r.policy == "random"]
    latencies = [x for r in planner for x in r.tick_latency_ms]

    def rate(rs: List[EpisodeRecord]) -> float:
        return float(np.mean([r.success for r in rs])) if rs else float("nan")

    def mean_final(rs: List[EpisodeRecord]) -> float:
        return float(np.mean([r.final_distance_m for r in rs])) if rs else float("nan")

    return {
        "task": task,
        "episodes": len(planner),
        "success_rate": rate(planner),
        "random_success_rate": rate(random),
        "mean_final_distance": mean_final(planner),
        "random_mean_final_distance": mean_final(random),
        "mean_initial_distance": float(np.mean([r.initial_distance_m for r in planner])) if planner else float("nan"),
        "mean_steps": float(np.mean([r.steps for r in planner])) if planner else float("nan"),
        "tick_latency_p50_ms": percentile(latencies, 50),
        "tick_latency_p95_ms": percentile(latencies, 95),
        "mean_plan_iterations": float(np.mean([x for r in planner for x in r.plan_iterations]))
        if any(r.plan_iterations for r in planner) else float("nan"),
        "stop_reasons": sorted({r.stop_reason for r in planner if r.stop_reason}),
    }


def format_table(summaries: List[Dict[str, object]]) -> str:
    head = (f"{'task':<6} {'episodes':>8} {'planner':>8} {'random':>8} {'final dist (m)':>15} "
            f"{'random dist':>12} {'tick p95 (ms)':>14}")
    lines = [head, "-" * len(head)]

    def cell(value, fmt: str, width: int) -> str:  # "-" where nothing was measured (e.g. --no-random)
        return f"{'-' if math.isnan(value) else format(value, fmt):>{width}}"

    for s in summaries:
        lines.append(
            f"{s['task']:<6} {s['episodes']:>8} {cell(s['success_rate'], '.0%', 8)} "
            f"{cell(s['random_success_rate'], '.0%', 8)} {cell(s['mean_final_distance'], '.3f', 15)} "
            f"{cell(s['random_mean_final_distance'], '.3f', 12)} {cell(s['tick_latency_p95_ms'], '.1f', 14)}"
        )
    return "\n".join(lines)


def plot_distances(records: List[EpisodeRecord], path: Path, tolerance_m: Dict[str, float]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({r.task for r in records})
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for r in records:
            if r.task != task:
                continue
            colour = {"": "tab:blue", "fixed": "tab:blue", "deadline": "tab:orange"}.get(r.mode, "tab:purple") \
                if r.policy == "planner" else "tab:gray"
            label = f"{r.policy} ({r.mode})" if r.policy == "planner" and r.mode else r.policy
            ax.plot(np.arange(len(r.distances_m)), r.distances_m, color=colour, alpha=0.6, lw=1.2, label=label)
        if task in tolerance_m:
            ax.axhline(tolerance_m[task], color="tab:green", ls="--", lw=1, label="success tolerance")
        handles, labels = ax.get_legend_handles_labels()
        uniq = dict(zip(labels, handles))
        ax.legend(uniq.values(), uniq.keys(), fontsize=8)
        ax.set_title(f"{task}: distance to goal")
        ax.set_xlabel("control tick")
        ax.set_ylabel("distance (m)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def with_progress(frame: np.ndarray, done: float, colour=(60, 140, 230)) -> np.ndarray:
    """``frame`` with a 3-px progress strip under it (episode time): still episodes still animate."""
    h, w = frame.shape[:2]
    strip = np.full((3, w, 3), 30, dtype=np.uint8)
    strip[:, : int(round(min(max(done, 0.0), 1.0) * w))] = colour
    return np.concatenate([frame, strip], axis=0)


def write_gif(frames: List[np.ndarray], path: Path, fps: float = 8.0, scale: int = 3) -> Path:
    """Frames [H, W, 3] uint8, nearest-upscaled so 64-px renders are visible."""
    import imageio.v2 as imageio

    if not frames:
        raise ValueError("write_gif: no frames")
    big = [np.repeat(np.repeat(f, scale, axis=0), scale, axis=1) for f in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimsave(path, big, duration=1.0 / fps, loop=0)
    return path


# ---------------------------------------------------------------------- diagnostics (issue 13)
def trace_from_record(rec: EpisodeRecord, block_xy: Optional[Sequence[Sequence[float]]] = None,
                      goal_xy: Optional[Sequence[float]] = None, touched: Optional[bool] = None):
    """The failure classifier's view of a closed-loop episode; push needs ``block_xy`` [T+1, 2] and ``goal_xy``
    to tell "never touched" and "wrong way" apart: the arguments, else what the harness recorded in ``rec``."""
    from ami_world_model.evaluation.failure import EpisodeTrace

    pick = lambda given, recorded: given if given is not None else recorded  # noqa: E731
    return EpisodeTrace(rec.task, rec.success, [rec.initial_distance_m] + list(rec.distances_m),
                        rec.stop_reason or "max_steps", pick(block_xy, rec.block_xy), pick(goal_xy, rec.goal_xy),
                        pick(touched, rec.touched), rec.min_tool_block_m)


def diagnostic_summary(records: List[EpisodeRecord], traces: Optional[List[object]] = None) -> Dict[str, object]:
    """Planner and random success with Wilson 95 % intervals, and the planner's failure reasons.

    Args:
        records: one task's episodes (planner and random).
        traces: the planner episodes' ``EpisodeTrace`` in order (default: ``trace_from_record`` of each).
    """
    from ami_world_model.evaluation.failure import classify_failure, count_reasons
    from ami_world_model.evaluation.stats import success_summary

    planner = [r for r in records if r.policy == "planner"]
    random = [r for r in records if r.policy == "random"]
    traces = traces if traces is not None else [trace_from_record(r) for r in planner]
    if len(traces) != len(planner):
        raise ValueError(f"{len(traces)} traces for {len(planner)} planner episodes")
    return {"planner": success_summary([r.success for r in planner]),
            "random": success_summary([r.success for r in random]),
            "failures": count_reasons(classify_failure(t) for t in traces)}


def format_headline_table(rows: List[Dict[str, object]]) -> str:
    """The issue's headline table. Each row: ``task``, ``mode`` ("fixed"/"deadline"), ``planner`` and
    ``random`` (``stats.success_summary`` dicts), optional ``oracle`` (same), ``energy_spearman`` (float or
    None), ``failures`` (``failure.count_reasons`` dict), ``tick_p95_ms`` and optional ``plan_iterations`` (the
    mean optimiser iterations per tick)."""
    from ami_world_model.evaluation.stats import format_rate

    def number(x: Optional[float], fmt: str, unit: str = "") -> str:
        return "-" if x is None or math.isnan(x) else format(x, fmt) + unit

    head = (f"{'task':<6} {'mode':<9} {'planner [95% CI]':>17} {'random':>14} {'oracle':>14} {'energy rho':>10} "
            f"{'tick p95':>8} {'iters':>5}  failures")
    lines = [head, "-" * len(head)]
    for r in rows:
        fails = ", ".join(f"{k} {v}" for k, v in (r.get("failures") or {}).items() if v and k != "success")
        lines.append(
            f"{r['task']:<6} {r.get('mode', '-'):<9} {format_rate(r['planner']):>17} "
            f"{format_rate(r.get('random') or {}):>14} {format_rate(r.get('oracle') or {}):>14} "
            f"{number(r.get('energy_spearman'), '.2f'):>10} {number(r.get('tick_p95_ms'), '.0f', ' ms'):>8} "
            f"{number(r.get('plan_iterations'), '.1f'):>5}  {fails or '-'}")
    return "\n".join(lines)


def format_budget(mode: str, budget: Optional[Dict[str, object]]) -> str:
    """One line: the planner budget a mode ran (the node's ``~/status`` ``planner_budget``)."""
    if not budget:
        return f"{mode}: planner budget not reported"
    b = budget
    text = (f"{mode}: {b['method']} {b['num_samples']} samples x {b['iterations']} iterations, top {b['top_k']}, "
            f"H = {b['horizon_steps']}")
    if b.get("deadline_s") is None:
        return text + ", no deadline"
    text += f", deadline {float(b['deadline_s']) * 1e3:.0f} ms"
    if b.get("autosize") in ("kept", "reduced", "too_slow"):
        text += (f", auto-sized ({b['autosize']}; configured {b['configured_num_samples']} x "
                 f"{b['configured_iterations']}, one rollout {float(b['measured_iteration_s']) * 1e3:.1f} ms)")
    else:
        text += f", auto-sizing {b.get('autosize', '?')}"
    return text
