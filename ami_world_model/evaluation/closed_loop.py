"""`ami-wm eval`: closed-loop evaluation — the simulated cell and the planner node over ROS 2 (real DDS).

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
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from ami_world_model.config import from_dict
from ami_world_model.evaluation.report import (
    EpisodeRecord,
    format_table,
    plot_distances,
    summarize,
    with_progress,
    write_gif,
)

TASKS = ("reach", "push")
LATCHED_STOPS = ("goal_reached", "unsure_surprise", "unsure_no_progress", "model_error")


@dataclass
class EvalConfig:
    """What one `ami-wm eval` run does (built strictly with config.from_dict)."""

    checkpoint: str = "models/default"
    tasks: List[str] = field(default_factory=lambda: ["reach"])
    episodes: int = 2
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
        if self.episodes < 1 or self.max_steps < 1 or self.gif_episodes < 0 or self.rate_hz <= 0:
            raise ValueError("episodes and max_steps must be >= 1, gif_episodes >= 0, rate_hz > 0")


def _ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _time_msg(t: float):
    from builtin_interfaces.msg import Time

    ns = int(round(t * 1e9))
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


class ClosedLoop:
    """Sim cell + planner node + this harness node on one executor in this process (DDS between them)."""

    def __init__(self, cfg: EvalConfig, checkpoint: Path) -> None:
        import rclpy
        from geometry_msgs.msg import PointStamped, TwistStamped
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from sensor_msgs.msg import Image
        from std_msgs.msg import String
        from std_srvs.srv import SetBool, Trigger

        from ami_world_model.models.checkpoint import read_meta
        from ami_world_model.ros.planner_node import PlannerNode
        from ami_world_model.ros.sim_cell_node import SimCellNode

        self.cfg = cfg
        self._rclpy = rclpy
        meta = read_meta(checkpoint)
        image = meta["config"].get("image", {})
        action = meta["config"].get("action", {})
        self.action_low = np.asarray(action.get("low", [-0.1, -0.1]), dtype=np.float64)
        self.action_high = np.asarray(action.get("high", [0.1, 0.1]), dtype=np.float64)
        self.action_names = list(action.get("names", ["linear.x", "linear.y"]))
        if action.get("kind", "twist") != "twist":
            raise ValueError("ami-wm eval drives the sim's Servo-like twist interface: the checkpoint's actions "
                             f"must be twists, got kind {action.get('kind')!r}")
        sim_time = not cfg.realtime
        if not cfg.verbose:
            from rclpy.logging import LoggingSeverity, set_logger_level

            for name in ("sim_cell_node", "planner_node", "eval_harness"):
                set_logger_level(name, LoggingSeverity.WARN)
        period = 1.0 / cfg.rate_hz
        use_sim_time = Parameter("use_sim_time", value=sim_time)
        self.sim = SimCellNode(autostep=cfg.realtime, parameter_overrides=[
            use_sim_time, Parameter("rate_hz", value=float(cfg.rate_hz)),
            Parameter("image_height", value=int(image.get("height", 64))),
            Parameter("image_width", value=int(image.get("width", 64))),
            Parameter("randomize", value=bool(cfg.randomize)),
            Parameter("command_timeout_s", value=period if cfg.realtime else 1.5 * period),
        ])
        params = {
            "checkpoint": str(checkpoint), "backend": cfg.backend, "control_rate_hz": float(cfg.rate_hz),
            "goal_topic": "/sim_cell_node/goal_image", "start_enabled": False, "debug_image_rate_hz": 0.0,
            "diagnostics_rate_hz": 0.2,
        }
        if sim_time:
            params.update(max_image_age_s=10.0, max_joint_state_age_s=10.0)  # the harness sets the pace
        params.update(cfg.planner_params)
        self.planner = PlannerNode(parameter_overrides=[use_sim_time] + [Parameter(k, value=v)
                                                                          for k, v in params.items()])
        self.node = rclpy.create_node("eval_harness", parameter_overrides=[use_sim_time])
        # One thread, this one: MuJoCo's EGL context is bound to the thread that made it, so the sim must
        # render here. In realtime the sim's wall timer therefore waits while the planner plans (one CPU
        # process, as `ami-wm run --sim` on one core would behave).
        self.executor = SingleThreadedExecutor()
        for n in (self.sim, self.planner, self.node):
            self.executor.add_node(n)

        self.commands: List[Tuple[float, int]] = []  # (receive wall time, planned frame stamp ns)
        self.safety_state = ""
        self.images: Dict[int, float] = {}  # realtime: frame stamp ns -> receive wall time
        self.last_rgb: Optional[np.ndarray] = None
        self.positions: Dict[str, np.ndarray] = {}
        twist_topic = str(self.planner.get_parameter("twist_topic").value)
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.node.create_subscription(TwistStamped, twist_topic, self._on_command, reliable)
        self.node.create_subscription(String, "/planner_node/safety_state", self._on_safety, latched)
        self.node.create_subscription(Image, "/camera/image_raw", self._on_image, qos_profile_sensor_data)
        for key in ("ee", "block"):
            self.node.create_subscription(PointStamped, f"/sim_cell_node/{key}_position",
                                          lambda m, k=key: self._on_position(k, m), 10)
        self.twist_pub = self.node.create_publisher(TwistStamped, twist_topic, reliable)
        self._twist_type = TwistStamped
        self.enable_client = self.node.create_client(SetBool, "/planner_node/enable")
        self.clear_client = self.node.create_client(Trigger, "/planner_node/clear_goal")
        self.reset_client = self.node.create_client(Trigger, "/sim_cell_node/reset")
        self._setbool, self._trigger = SetBool, Trigger
        self.tolerance = {"reach": self.sim.cell.config.reach_tolerance_m,
                          "push": self.sim.cell.config.push_tolerance_m}
        self._rng = np.random.default_rng(cfg.seed + 7)
        self._start_planner()

    # ------------------------------------------------------------------ plumbing
    def spin_until(self, cond: Callable[[], bool], timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while not cond():
            if time.monotonic() > end:
                return False
            self.executor.spin_once(timeout_sec=0.002)
        return True

    def _on_command(self, msg) -> None:
        stamp = self.planner.planned_frame_stamp  # in-process: which frame the newest plan used
        self.commands.append((time.perf_counter(), _ns(stamp) if stamp is not None else -1))

    def _on_safety(self, msg) -> None:
        self.safety_state = msg.data

    def _on_image(self, msg) -> None:
        self.images[_ns(msg.header.stamp)] = time.perf_counter()
        if self.cfg.realtime:
            self.last_rgb = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(msg.height, msg.width, 3)

    def _on_position(self, key: str, msg) -> None:
        self.positions[key] = np.array([msg.point.x, msg.point.y, msg.point.z])

    def _call(self, client, request, what: str) -> Any:
        if not client.wait_for_service(timeout_sec=10.0):
            raise RuntimeError(f"{what}: service not available")
        fut = client.call_async(request)
        if not self.spin_until(fut.done, 10.0):
            raise RuntimeError(f"{what}: no answer within 10 s")
        res = fut.result()
        if not res.success:
            raise RuntimeError(f"{what} refused: {res.message}")
        return res

    def set_enabled(self, on: bool) -> None:
        self._call(self.enable_client, self._setbool.Request(data=on), f"planner enable={on}")

    def _start_planner(self) -> None:
        from rclpy.lifecycle import TransitionCallbackReturn

        if self.planner.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            raise RuntimeError(f"planner configure failed: {self.planner._stop_reason}")
        if not self.cfg.realtime:
            # Phase the planner's sim-time control timer one servo tick after the camera frames.
            self.sim.advance(1)
            self.sim.advance_ticks(1)
            want = int(round(self.sim.sim_now * 1e9))
            if not self.spin_until(lambda: self.planner.get_clock().now().nanoseconds == want, 10.0):
                raise RuntimeError("the planner never received the sim's /clock")
        if self.planner.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            raise RuntimeError("planner activate failed")
        if not self.cfg.realtime:
            self.sim.advance_ticks(self.sim.ticks_per_frame - 1)  # back on the frame grid

    def close(self) -> None:
        if self.planner._active:
            self.planner.trigger_deactivate()
        self.executor.shutdown(timeout_sec=2.0)
        for n in (self.node, self.planner, self.sim):
            n.destroy_node()

    # ------------------------------------------------------------------ episodes
    def _reset(self, seed: int, task: str):
        from rclpy.parameter import Parameter

        if not self.cfg.realtime:
            return self.sim.reset(seed, task)
        # realtime: the sim steps on the executor; reset through its service so no callback races it
        self.sim.set_parameters([Parameter("seed", value=int(seed)), Parameter("task", value=task)])
        self._call(self.reset_client, self._trigger.Request(), "sim reset")
        return self.sim.cell.goal

    def _distance(self, task: str, goal) -> float:
        if not self.cfg.realtime:
            return self.sim.cell.distance_to_goal(goal)
        key, target = ("ee", goal.ee_position) if task == "reach" else ("block", goal.block_position)
        pos = self.positions.get(key)
        return float(np.linalg.norm(pos[:2] - target[:2])) if pos is not None else float("nan")

    def run_episode(self, task: str, seed: int, policy: str, gif: bool) -> EpisodeRecord:
        self.set_enabled(False)
        self._call(self.clear_client, self._trigger.Request(), "planner clear_goal")
        before = self.planner.engine.goal_image
        goal = self._reset(seed, task)
        if policy == "planner":
            ok = self.spin_until(lambda: self.planner.engine.goal_image is not None
                                 and self.planner.engine.goal_image is not before, 10.0)
            if not ok:
                raise RuntimeError("the planner never received the goal image")
            self.set_enabled(True)
        self.positions.clear()
        if self.cfg.realtime:
            self.spin_until(lambda: len(self.positions) == 2, 2.0)
        rec = EpisodeRecord(task=task, policy=policy, seed=seed, success=False, final_distance_m=float("nan"),
                            initial_distance_m=self._distance(task, goal), steps=0,
                            frames=[] if gif else None)
        step = self._tick_realtime if self.cfg.realtime else self._tick_lockstep
        received = self.sim.commands_received
        for _ in range(self.cfg.max_steps):
            latched = step(policy, rec)
            rec.steps += 1
            rec.distances_m.append(self._distance(task, goal))
            if gif:
                cur = self.sim.cell.render() if not self.cfg.realtime else self.last_rgb
                if cur is not None:
                    rec.frames.append(np.concatenate([cur, goal.image], axis=1))
            if latched:
                rec.stop_reason = self.safety_state
                break
        if policy == "planner":
            self.set_enabled(False)
            if not rec.stop_reason:
                rec.stop_reason = "max_steps" if self.safety_state in ("", "commanding", "disabled") \
                    else self.safety_state
        else:
            rec.stop_reason = "max_steps"
        rec.commands_received = self.sim.commands_received - received
        rec.final_distance_m = rec.distances_m[-1] if rec.distances_m else rec.initial_distance_m
        rec.success = bool(rec.final_distance_m <= self.tolerance[task])
        return rec

    def _random_twist(self, stamp_s: Optional[float]):
        msg = self._twist_type()
        msg.header.frame_id = "base_link"
        msg.header.stamp = _time_msg(stamp_s) if stamp_s is not None else self.node.get_clock().now().to_msg()
        for name, x in zip(self.action_names, self._rng.uniform(self.action_low, self.action_high)):
            group, axis = name.split(".")
            setattr(getattr(msg.twist, group), axis, float(x))
        return msg

    def _tick_lockstep(self, policy: str, rec: EpisodeRecord) -> bool:
        """One control period in lockstep; True when the planner latched a stop (the episode ends)."""
        sim, n = self.sim, self.sim.ticks_per_frame
        frame_ns = int(round(sim.sim_now * 1e9))  # the newest frame was published at the current sim time
        t_frame = time.perf_counter()
        latched = False
        if policy == "planner":
            self.spin_until(lambda: self.planner._frame_stamp is not None
                            and _ns(self.planner._frame_stamp) == frame_ns, self.cfg.command_wait_s)
            count = len(self.commands)
            sim.advance_ticks(1)  # the planner's timer fires on this tick's /clock and plans on the frame
            got = self.spin_until(lambda: any(s == frame_ns for _, s in self.commands[count:])
                                  or self.safety_state in LATCHED_STOPS, self.cfg.command_wait_s)
            hits = [t for t, s in self.commands[count:] if s == frame_ns]
            if hits:
                rec.tick_latency_ms.append((hits[0] - t_frame) * 1e3)
                step = self.planner._last_step  # in-process: optimiser iterations the wall deadline allowed
                if step is not None:
                    rec.plan_iterations.append(int(step.iterations))
            latched = got and not hits and self.safety_state in LATCHED_STOPS
        else:
            sim.advance_ticks(1)
            before = sim.commands_received
            self.twist_pub.publish(self._random_twist(sim.sim_now))
            self.spin_until(lambda: sim.commands_received > before, self.cfg.command_wait_s)
        sim.advance_ticks(n - 1)  # the rest of the period; its last tick publishes the next frame
        return latched

    def _tick_realtime(self, policy: str, rec: EpisodeRecord) -> bool:
        """One control period on wall clocks: wait for the next frame (publishing a random twist if baseline)."""
        seen = set(self.images)
        count = len(self.commands)
        if policy == "random":
            self.twist_pub.publish(self._random_twist(None))
        self.spin_until(lambda: len(set(self.images) - seen) > 0, 2.0 / self.cfg.rate_hz)
        for t_cmd, s in self.commands[count:]:
            if s in self.images:
                rec.tick_latency_ms.append((t_cmd - self.images[s]) * 1e3)
        return policy == "planner" and self.safety_state in LATCHED_STOPS

    def run(self, progress: bool = True) -> List[EpisodeRecord]:
        records: List[EpisodeRecord] = []
        policies = ["planner", "random"] if self.cfg.random_baseline else ["planner"]
        for task in self.cfg.tasks:
            for i in range(self.cfg.episodes):
                seed = self.cfg.seed + i
                for policy in policies:
                    t0 = time.perf_counter()
                    rec = self.run_episode(task, seed, policy, gif=policy == "planner" and i < self.cfg.gif_episodes)
                    records.append(rec)
                    if progress:
                        print(f"  {task:<5} seed {seed:<6} {policy:<7} {'success' if rec.success else 'fail':<7} "
                              f"final {rec.final_distance_m:.3f} m (start {rec.initial_distance_m:.3f}) "
                              f"{rec.steps:>3} ticks, stop: {rec.stop_reason or '-'} "
                              f"[{time.perf_counter() - t0:.1f} s]", file=sys.stderr, flush=True)
        return records


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


def evaluate(cfg: EvalConfig, domain_id: Optional[int] = None) -> Dict[str, Any]:
    """Run the evaluation; returns {"summaries": [...], "records": [...], "files": {...}, "protocol": {...}}."""
    import rclpy

    from ami_world_model.node_config import resolve_checkpoint
    from ami_world_model.ros import private_domain_id

    path = resolve_checkpoint(cfg.checkpoint)
    os.environ.setdefault("MUJOCO_GL", "egl")
    own = not rclpy.ok()
    if own:
        # A private DDS domain: the eval's /camera, /clock and commands must not reach a live robot graph.
        rclpy.init(domain_id=domain_id if domain_id is not None else private_domain_id())
    loop = None
    try:
        loop = ClosedLoop(cfg, path)
        t0 = time.perf_counter()
        records = loop.run()
        wall = time.perf_counter() - t0
        tolerance = dict(loop.tolerance)
    finally:
        if loop is not None:
            loop.close()
        if own and rclpy.ok():
            rclpy.shutdown()
    summaries = []
    for task in cfg.tasks:
        s = summarize(task, [r for r in records if r.task == task])
        s["tolerance_m"] = tolerance[task]
        summaries.append(s)
    files = write_outputs(records, Path(cfg.out), tolerance)
    return {"summaries": summaries, "records": records, "files": files, "wall_s": wall,
            "protocol": {t: protocol(cfg, tolerance, t) for t in cfg.tasks}, "checkpoint": str(path)}


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
    p.add_argument("--task", choices=["reach", "push", "all"], default="reach")
    p.add_argument("--episodes", type=int, default=10, help="episodes per task (the random baseline runs the same)")
    p.add_argument("--seed", type=int, default=100_000, help="episode i uses seed S+i (start and goal)")
    p.add_argument("--randomize", action="store_true", help="randomise lighting, colours and camera pose")
    p.add_argument("--checkpoint", default="models/default", help="world-model checkpoint (path stem)")
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "onnxruntime", "tensorrt"])
    p.add_argument("--max-steps", type=int, default=80, help="control ticks per episode at most")
    p.add_argument("--out", default="results/eval", help="folder for the plot, the GIF and eval.json")
    p.add_argument("--gif-episodes", type=int, default=2, help="planner episodes per task recorded in the GIF")
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


def main(args: argparse.Namespace) -> int:
    try:
        cfg = config_from_args(args)
        from ami_world_model.node_config import resolve_checkpoint

        resolve_checkpoint(cfg.checkpoint)
    except (ValueError, FileNotFoundError) as e:
        print(f"ami-wm eval: {e}", file=sys.stderr)
        return 2
    print(f"evaluating {cfg.checkpoint} on {', '.join(cfg.tasks)}: {cfg.episodes} episodes each from seed "
          f"{cfg.seed}, {cfg.max_steps} ticks max, {'realtime' if cfg.realtime else 'lockstep'}",
          file=sys.stderr, flush=True)
    try:
        result = evaluate(cfg, args.domain_id)
    except (RuntimeError, ValueError, OSError) as e:  # e.g. a checkpoint the sim cannot be driven with
        print(f"ami-wm eval: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    summaries = result["summaries"]
    out = Path(cfg.out)
    write_results_json(result, out / "eval.json")
    if args.record_into_checkpoint:
        record_into_checkpoint(Path(result["checkpoint"]), summaries, result["protocol"])
    if args.json:
        print(json.dumps(json_object(summaries)))
    else:
        print(format_table(summaries))
        print(f"success = within tolerance at the end of the episode; wall {result['wall_s']:.0f} s")
        print("wrote " + ", ".join(list(result["files"].values()) + [str(out / "eval.json")]))
    return 0
