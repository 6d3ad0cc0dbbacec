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

Modes (``--mode``): ``fixed`` runs the planner with ``planner_fixed_budget`` (all samples x iterations every
tick, no wall-clock deadline), so in lockstep the table is the same on any machine; ``deadline`` is the robot's
mode (the anytime search stops at the deadline, the budget auto-sized at configure). ``both`` (the default)
runs the same seeds in each and reports them side by side; the random baseline runs once per task. Per episode
the harness also records the block's positions, its goal and tool-block contact (push), from which
``evaluation/failure.py`` names one failure reason. ``--oracle N`` adds the oracle planner (the same planner
and budget over the true simulator, ``evaluation/oracle.py``) on the first N seeds, ``--energy-quality`` the
latent energy's rank correlation with the true distance on scripted held-out episodes
(``evaluation/energy_quality.py``); both are ROS-free and run after the closed loop.
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from ami_world_model.config import from_dict
from ami_world_model.evaluation.report import (
    EpisodeRecord,
    diagnostic_summary,
    plot_distances,
    summarize,
    with_progress,
    write_gif,
)
from ami_world_model.node_config import BACKENDS, DEFAULT_CHECKPOINT, PlannerNodeConfig

TASKS = ("reach", "push")
MODES = ("fixed", "deadline")  # fixed: samples x iterations, no deadline; deadline: the robot's mode
ENERGY_SEED = 300_000  # the scripted expert's held-out episodes for --energy-quality (as diagnostics.py)


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
    modes: List[str] = field(default_factory=lambda: list(MODES))  # planner modes, each on the same seeds
    oracle_episodes: int = 0  # oracle planner episodes per task (the first seeds); 0: none
    energy_episodes: int = 0  # scripted episodes per task for the energy rank correlation; 0: none

    def __post_init__(self) -> None:
        bad = [t for t in self.tasks if t not in TASKS]
        if bad or not self.tasks:
            raise ValueError(f"tasks must be drawn from {TASKS}, got {self.tasks}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.episodes < 1 or self.max_steps < 1 or self.gif_episodes < 0 or self.rate_hz <= 0:
            raise ValueError("episodes and max_steps must be >= 1, gif_episodes >= 0, rate_hz > 0")
        if not self.modes or any(m not in MODES for m in self.modes) or len(set(self.modes)) != len(self.modes):
            raise ValueError(f"modes must be distinct entries of {MODES}, got {self.modes}")
        if "planner_fixed_budget" in self.planner_params:
            raise ValueError("planner_fixed_budget is set by the mode (--mode fixed|deadline|both), not --param")
        if not 0 <= self.oracle_episodes <= self.episodes or self.energy_episodes < 0:
            raise ValueError(f"oracle episodes must be in [0, episodes={self.episodes}] and energy episodes >= 0, "
                             f"got {self.oracle_episodes}, {self.energy_episodes}")
        self.planner_config()  # the planner overrides make a valid node config

    @property
    def seeds(self) -> List[int]:
        return [self.seed + i for i in range(self.episodes)]

    def mode_params(self, mode: str) -> Dict[str, Any]:
        """The planner node's parameter overrides for one mode."""
        return {**self.planner_params, "planner_fixed_budget": mode == "fixed"}

    def planner_config(self) -> PlannerNodeConfig:
        """The node config the planner_params give (the configured budget, before any auto-sizing)."""
        return PlannerNodeConfig.from_params(dict(self.planner_params))


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


def protocol(cfg: EvalConfig, tolerance: Dict[str, float], task: str,
             budgets: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """How ``task`` was measured: seeds, ticks, tolerance, the modes and the planner budget each ran."""
    return {"seeds": cfg.seeds, "episodes": cfg.episodes,
            "max_steps": cfg.max_steps, "tolerance_m": tolerance[task], "randomize": cfg.randomize,
            "mode": "realtime" if cfg.realtime else "lockstep", "success": "at the end of the episode",
            "control_rate_hz": cfg.rate_hz, "planner_modes": list(cfg.modes),
            "planner_budget": dict(budgets or {}),
            "oracle_seeds": cfg.seeds[:cfg.oracle_episodes],
            "energy_seeds": [ENERGY_SEED + i for i in range(cfg.energy_episodes)]}


def summarize_modes(cfg: EvalConfig, records: List[EpisodeRecord], tolerance: Dict[str, float],
                    budgets: Dict[str, Any]) -> List[Dict[str, Any]]:
    """One summary per task and mode (tasks outer): ``report.summarize`` with the task's random baseline, plus
    ``mode``, Wilson intervals (``planner``, ``random``), failure-reason counts (``failures``), the tolerance
    and the planner budget the mode ran (``planner_budget``, from the node's ~/status)."""
    out = []
    for task in cfg.tasks:
        random = [r for r in records if r.task == task and r.policy == "random"]
        for mode in cfg.modes:
            recs = [r for r in records if r.task == task and r.policy == "planner" and r.mode == mode] + random
            s: Dict[str, Any] = {**summarize(task, recs), "mode": mode}
            s.update(diagnostic_summary(recs))
            s.update(tolerance_m=tolerance[task], planner_budget=budgets.get(mode))
            out.append(s)
    return out


def headline_rows(summaries: List[Dict[str, Any]], oracle: Optional[Dict[str, Any]] = None,
                  energy: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
    """The rows of ``report.format_headline_table`` (one per task and mode)."""
    rows = []
    for s in summaries:
        o = (oracle or {}).get(s["task"])
        e = (energy or {}).get(s["task"])
        rows.append({
            "task": s["task"], "mode": s["mode"], "planner": s["planner"], "random": s["random"],
            "oracle": {k[len("success_"):]: v for k, v in o.items() if k.startswith("success_")} if o else None,
            "energy_spearman": e["stride_1"]["spearman_mean"] if e else None,
            "failures": s["failures"], "tick_p95_ms": s["tick_latency_p95_ms"],
            "plan_iterations": s["mean_plan_iterations"],
        })
    return rows


def run_oracle(cfg: EvalConfig, checkpoint: Path) -> Dict[str, Any]:
    """The oracle planner (true dynamics, true distance; the planner_params' budget, no deadline) on the first
    ``oracle_episodes`` seeds of each task: ``{task: oracle.summarize_oracle(...)}``."""
    from ami_world_model.evaluation.oracle import evaluate_oracle
    from ami_world_model.models.checkpoint import read_meta
    from ami_world_model.sim.cell import SimCell
    from ami_world_model.sim.config import SimConfig

    meta = read_meta(checkpoint)["config"]
    cell = SimCell(SimConfig(image_height=int(meta["image"]["height"]), image_width=int(meta["image"]["width"]),
                             control_dt_s=1.0 / cfg.rate_hz, randomize=cfg.randomize))
    try:
        return evaluate_oracle(cfg.tasks, cfg.seeds[:cfg.oracle_episodes], cfg.planner_config().planner,
                               action_dt_s=float(meta["action"]["dt_s"]), max_steps=cfg.max_steps, cell=cell)
    finally:
        cell.close()


def run_energy_quality(cfg: EvalConfig, checkpoint: Path) -> Dict[str, Any]:
    """The latent energy's rank correlation with the true distance on ``energy_episodes`` scripted held-out
    episodes per task (``energy_quality.score_checkpoint``)."""
    from ami_world_model.evaluation.energy_quality import score_checkpoint

    seeds = tuple(ENERGY_SEED + i for i in range(cfg.energy_episodes))
    return score_checkpoint(str(checkpoint), cfg.tasks, seeds, randomize=cfg.randomize,
                            energy=cfg.planner_config().planner.energy)


def write_results_json(result: Dict[str, Any], path: Path) -> Path:
    """Summaries, protocol, the headline rows, oracle and energy quality (when run) and every episode (without
    frames) as strict JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_json_safe({
        "summaries": result["summaries"], "protocol": result["protocol"], "checkpoint": result["checkpoint"],
        "wall_s": result["wall_s"], "headline": result.get("headline", []),
        "oracle": result.get("oracle"), "energy_quality": result.get("energy_quality"),
        "episodes": [{k: v for k, v in vars(r).items() if k != "frames"} for r in result["records"]],
    }), indent=2) + "\n")
    return path


def record_into_checkpoint(path: Path, summaries: List[Dict[str, Any]], protos: Dict[str, Any],
                           oracle: Optional[Dict[str, Any]] = None, energy: Optional[Dict[str, Any]] = None) -> None:
    """metrics["eval"][task] in the checkpoint JSON: the first mode's summary at the top, every mode's under
    ``modes``, the protocol (seeds, modes, planner budget), and the oracle and energy quality when run. Only
    metrics change; the config is re-validated before writing."""
    from ami_world_model.models.checkpoint import checkpoint_paths, read_meta
    from ami_world_model.models.config import WorldModelConfig

    meta = read_meta(path)
    metrics = meta["config"].setdefault("metrics", {})
    ev = metrics.setdefault("eval", {})
    for task in protos:
        mine = [{k: v for k, v in s.items() if k != "task"} for s in summaries if s["task"] == task]
        entry = {**mine[0], "modes": {m["mode"]: m for m in mine}, "protocol": protos[task]}
        if oracle and task in oracle:
            entry["oracle"] = oracle[task]
        if energy and task in energy:
            entry["energy_quality"] = energy[task]
        ev[task] = entry
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
                   help="write the summaries (both modes, oracle, energy quality) into the checkpoint JSON's "
                        "metrics['eval']")
    p.add_argument("--param", action="append", default=[], metavar="NAME:=VALUE",
                   help="planner_node parameter override (YAML value), repeatable")
    p.add_argument("--mode", choices=[*MODES, "both"], default="both" if d.modes == list(MODES) else d.modes[0],
                   help="planner mode: fixed (samples x iterations every tick, no deadline: the same table on any "
                        "machine), deadline (the robot's: the search stops at the deadline, auto-sized), or both")
    p.add_argument("--oracle", type=int, default=d.oracle_episodes, metavar="N",
                   help="also run the oracle planner (true dynamics and distance) on the first N seeds per task "
                        "(slow: ~30 s an episode)")
    p.add_argument("--energy-quality", type=int, nargs="?", const=20, default=d.energy_episodes, metavar="N",
                   help="also score the latent energy's rank correlation with the true distance on N scripted "
                        "held-out episodes per task (default N: 20)")
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
        "planner_params": params, "modes": list(MODES) if args.mode == "both" else [args.mode],
        "oracle_episodes": args.oracle, "energy_episodes": args.energy_quality,
    })
