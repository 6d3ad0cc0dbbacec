"""`ami-wm eval`: closed-loop evaluation — the simulated cell and the planner node over ROS 2 (real DDS).

This module is ROS-free (config, protocol, outputs, the command line); the run itself (nodes, executor,
lockstep) is ``ros/eval_harness.py``, which talks to the planner through its public interfaces.

Per episode: seed -> sim reset (start + goal); the sim publishes the goal image on its latched
``~/goal_image`` topic, which is the planner's ``goal_topic``; the planner is enabled (the new goal clears its
history and warm start); sim and planner run for at most ``max_steps`` control ticks. The random baseline
runs the same seeds with the planner disabled while this harness publishes uniform random twists within the
model's action bounds on the same command topic.

Success is judged at the END of the episode (tool / block within the sim's tolerance of the goal after the
last tick, or when the planner latched a stop such as goal_reached, after which the arm stays still), not
"reached at any time".

Lockstep (default): the sim does not run on its own (autostep off) and every node uses sim time. The
planner's control timer is phased one servo tick after each camera frame, so per tick the harness
(1) advances the sim to the next frame, (2) waits until the planner holds that frame, (3) advances one
servo tick so the planner's timer fires and plans on that frame, (4) waits for its command (or a latched
stop, or a timeout), (5) runs the rest of the period. Each command therefore acts from one servo tick
(10 ms at 100 Hz) after its frame; results do not depend on how loaded the CPU is. The planner's watchdog
ages use receive wall time, so max_image_age_s is raised in lockstep (the harness, not the camera, sets
the pace), and the sim's command timeout is 1.5 periods so a command held for a full period is never
judged stale on the exact boundary. One thing stays on the wall clock, as deployed: the planner's anytime
optimiser stops at its deadline (planner_deadline_fraction of the period), so a loaded CPU gets fewer
iterations per tick; the summary's mean_plan_iterations shows how many ran. ``--realtime`` runs the sim on
its wall timer and every clock on wall time instead (numbers then depend on the machine).

Latency per tick: wall time from the frame's publication (lockstep: the end of the sim advance that
published it; realtime: its arrival at this harness) to this harness receiving the planner's command for it.
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List

from ami_world_model.config import from_dict
from ami_world_model.evaluation.report import (
    EpisodeRecord,
    plot_distances,
    with_progress,
    write_gif,
)
from ami_world_model.node_config import BACKENDS, DEFAULT_CHECKPOINT

TASKS = ("reach", "push")


@dataclass
class EvalConfig:
    """What one `ami-wm eval` run does (built strictly with config.from_dict)."""

    checkpoint: str = DEFAULT_CHECKPOINT
    tasks: List[str] = field(default_factory=lambda: ["reach"])
    episodes: int = 10  # per task (the random baseline runs the same seeds)
    seed: int = 100_000  # held out: collection uses seeds 0, 1, ... per episode
    randomize: bool = False
    backend: str = "auto"
    max_steps: int = 80
    out: str = "results/eval"
    gif_episodes: int = 2
    realtime: bool = False
    rate_hz: float = 10.0
    command_wait_s: float = 5.0  # lockstep: longest wait for the planner's command (then the tick is missed)
    random_baseline: bool = True
    planner_params: Dict[str, Any] = field(default_factory=dict)  # extra planner_node parameter overrides
    verbose: bool = False  # the nodes' INFO logs (default: warnings and errors only)

    def __post_init__(self) -> None:
        bad = [t for t in self.tasks if t not in TASKS]
        if bad or not self.tasks:
            raise ValueError(f"tasks must be drawn from {TASKS}, got {self.tasks}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.episodes < 1 or self.max_steps < 1 or self.gif_episodes < 0 or self.rate_hz <= 0:
            raise ValueError("episodes and max_steps must be >= 1, gif_episodes >= 0, rate_hz > 0")


# ---------------------------------------------------------------------- orchestration
def write_outputs(records: List[EpisodeRecord], out: Path, tolerance: Dict[str, float]) -> Dict[str, str]:
    """The distance plot and one GIF of the recorded planner episodes (current | goal), under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"plot": str(plot_distances(records, out / "distance.png", tolerance))}
    frames = []
    for r in records:
        if r.frames:
            n = len(r.frames)
            frames += [with_progress(f, (i + 1) / n) for i, f in enumerate(r.frames)]
            frames += [with_progress(r.frames[-1], 1.0, (60, 200, 90) if r.success else (220, 70, 60))] * 4
    if frames:
        files["gif"] = str(write_gif(frames, out / "episodes.gif"))
    return files


def protocol(cfg: EvalConfig, tolerance: Dict[str, float], task: str) -> Dict[str, Any]:
    return {"seeds": [cfg.seed + i for i in range(cfg.episodes)], "episodes": cfg.episodes,
            "max_steps": cfg.max_steps, "tolerance_m": tolerance[task], "randomize": cfg.randomize,
            "mode": "realtime" if cfg.realtime else "lockstep", "success": "at the end of the episode",
            "control_rate_hz": cfg.rate_hz}


def write_results_json(result: Dict[str, Any], path: Path) -> Path:
    """Summaries, protocol and every episode (without frames) as strict JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_json_safe({
        "summaries": result["summaries"], "protocol": result["protocol"], "checkpoint": result["checkpoint"],
        "wall_s": result["wall_s"],
        "episodes": [{k: v for k, v in vars(r).items() if k != "frames"} for r in result["records"]],
    }), indent=2) + "\n")
    return path


def record_into_checkpoint(path: Path, summaries: List[Dict[str, Any]], protos: Dict[str, Any]) -> None:
    """metrics["eval"][task] = summary + protocol in the checkpoint JSON; only metrics change, then re-validated."""
    from ami_world_model.models.checkpoint import checkpoint_paths, read_meta
    from ami_world_model.models.config import WorldModelConfig

    meta = read_meta(path)
    metrics = meta["config"].setdefault("metrics", {})
    ev = metrics.setdefault("eval", {})
    for s in summaries:
        ev[s["task"]] = {**{k: v for k, v in s.items() if k != "task"}, "protocol": protos[s["task"]]}
    from_dict(WorldModelConfig, meta["config"], "config")  # still a valid config before writing
    _, meta_path = checkpoint_paths(path)
    tmp = meta_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_json_safe(meta), indent=2, sort_keys=True) + "\n")
    tmp.replace(meta_path)


def _json_safe(x: Any) -> Any:
    """NaN -> None so the output is strict JSON."""
    if isinstance(x, float):
        return None if math.isnan(x) or math.isinf(x) else x
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


def json_object(summaries: List[Dict[str, Any]]) -> Dict[str, Any]:
    """One object: the summary for one task; for several, {"tasks": [...]} plus the first task's fields."""
    if len(summaries) == 1:
        return _json_safe(summaries[0])
    return _json_safe({**summaries[0], "tasks": summaries})


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = EvalConfig()  # the defaults live in the dataclass only
    p.add_argument("--task", choices=[*TASKS, "all"], default=d.tasks[0])
    p.add_argument("--episodes", type=int, default=d.episodes,
                   help="episodes per task (the random baseline runs the same)")
    p.add_argument("--seed", type=int, default=d.seed, help="episode i uses seed S+i (start and goal)")
    p.add_argument("--randomize", action="store_true", help="randomise lighting, colours and camera pose")
    p.add_argument("--checkpoint", default=d.checkpoint, help="world-model checkpoint (path stem)")
    p.add_argument("--backend", default=d.backend, choices=BACKENDS)
    p.add_argument("--max-steps", type=int, default=d.max_steps, help="control ticks per episode at most")
    p.add_argument("--out", default=d.out, help="folder for the plot, the GIF and eval.json")
    p.add_argument("--gif-episodes", type=int, default=d.gif_episodes,
                   help="planner episodes per task recorded in the GIF")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout (progress on stderr)")
    p.add_argument("--realtime", action="store_true", help="wall clocks instead of lockstep sim time")
    p.add_argument("--no-random", action="store_true", help="skip the random-action baseline")
    p.add_argument("--record-into-checkpoint", action="store_true",
                   help="write the summaries into the checkpoint JSON's metrics['eval']")
    p.add_argument("--param", action="append", default=[], metavar="NAME:=VALUE",
                   help="planner_node parameter override (YAML value), repeatable")
    p.add_argument("--verbose", action="store_true", help="show the nodes' INFO logs")
    p.add_argument("--domain-id", type=int, default=None, help="ROS domain for the run (default: a private one)")


def config_from_args(args: argparse.Namespace) -> EvalConfig:
    import yaml

    params = {}
    for item in args.param:
        if ":=" not in item:
            raise ValueError(f"--param expects NAME:=VALUE, got {item!r}")
        k, v = item.split(":=", 1)
        params[k.strip()] = yaml.safe_load(v)
    return from_dict(EvalConfig, {
        "checkpoint": args.checkpoint, "tasks": list(TASKS) if args.task == "all" else [args.task],
        "episodes": args.episodes, "seed": args.seed, "randomize": bool(args.randomize), "backend": args.backend,
        "max_steps": args.max_steps, "out": args.out, "gif_episodes": args.gif_episodes,
        "realtime": bool(args.realtime), "verbose": bool(args.verbose), "random_baseline": not args.no_random,
        "planner_params": params,
    })
