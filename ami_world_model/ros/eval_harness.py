"""The closed-loop evaluation's ROS side: the simulated cell, the planner node and this harness node on one
executor in one process, over real DDS. The protocol is described in ``evaluation/closed_loop.py`` (config,
report, CLI); this module runs it.

The harness talks to the planner only as any client does: its command topic, ``~/safety_state``, its public
``~/status`` (which frame it holds, which frame the newest command was planned from, the command's stamp,
optimiser iterations), ``~/enable`` / ``~/clear_goal``, and the lifecycle ``~/change_state`` service. It
constructs the planner node in this process only to share one executor thread with the sim (MuJoCo's EGL
context is bound to the thread that made it); the one node API it uses besides is ``get_clock`` (to phase
the lockstep), never the node's attributes.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PointStamped, TwistStamped
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rclpy.executors import SingleThreadedExecutor
from rclpy.logging import LoggingSeverity, set_logger_level
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger

from ami_world_model.config import from_dict
from ami_world_model.evaluation.closed_loop import (
    EvalConfig,
    headline_rows,
    protocol,
    run_energy_quality,
    run_oracle,
    summarize_modes,
    write_outputs,
)
from ami_world_model.evaluation.failure import classify_failure
from ami_world_model.evaluation.report import EpisodeRecord, format_budget, trace_from_record
from ami_world_model.models.checkpoint import read_meta
from ami_world_model.models.config import WorldModelConfig
from ami_world_model.node_config import PlannerNodeConfig, resolve_checkpoint
from ami_world_model.ros import private_domain_id
from ami_world_model.ros.planner_node import STATUS_QOS, PlannerNode
from ami_world_model.ros.sim_cell_node import SimCellNode
from ami_world_model.safety import StopReason
from ami_world_model.sim.batch import tool_block_contact

# The node's own latched stops (StopReason.latches): after one, the arm stays still and the episode ends.
LATCHED_STOPS = tuple(r.value for r in StopReason if r.latches)


def _ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _time_msg(t: float) -> Time:
    ns = int(round(t * 1e9))
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


class ClosedLoop:
    """Sim cell + planner node + this harness node on one executor in this process (DDS between them); the
    planner runs in one ``mode`` (closed_loop.MODES; default the config's first)."""

    def __init__(self, cfg: EvalConfig, checkpoint: Path, mode: Optional[str] = None) -> None:
        self.cfg = cfg
        self.mode = mode or cfg.modes[0]
        wm = from_dict(WorldModelConfig, read_meta(checkpoint)["config"], "config")  # typed, strict
        image, action = wm.image, wm.action
        self.action_low = np.asarray(action.low, dtype=np.float64)
        self.action_high = np.asarray(action.high, dtype=np.float64)
        self.action_names = list(action.names)
        if action.kind != "twist":
            raise ValueError("ami-wm eval drives the sim's Servo-like twist interface: the checkpoint's actions "
                             f"must be twists, got kind {action.kind!r}")
        sim_time = not cfg.realtime
        if not cfg.verbose:
            for name in ("sim_cell_node", "planner_node", "eval_harness"):
                set_logger_level(name, LoggingSeverity.WARN)
        period = 1.0 / cfg.rate_hz
        use_sim_time = Parameter("use_sim_time", value=sim_time)
        self.sim = SimCellNode(autostep=cfg.realtime, parameter_overrides=[
            use_sim_time, Parameter("rate_hz", value=float(cfg.rate_hz)),
            Parameter("image_height", value=int(image.height)),
            Parameter("image_width", value=int(image.width)),
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
        params.update(cfg.mode_params(self.mode))
        self.planner = PlannerNode(parameter_overrides=[use_sim_time] + [Parameter(k, value=v)
                                                                          for k, v in params.items()])
        self.node = rclpy.create_node("eval_harness", parameter_overrides=[use_sim_time])
        # One thread, this one: MuJoCo's EGL context is bound to the thread that made it, so the sim must
        # render here. In realtime the sim's wall timer therefore waits while the planner plans (one CPU
        # process, as `ami-wm run --sim` on one core would behave).
        self.executor = SingleThreadedExecutor()
        for n in (self.sim, self.planner, self.node):
            self.executor.add_node(n)

        self.command_times: Dict[int, float] = {}  # command header stamp ns -> receive wall time
        self.statuses: List[Dict[str, Any]] = []  # the planner's ~/status, in arrival order
        self.safety_state = ""
        self.images: Dict[int, float] = {}  # realtime: frame stamp ns -> receive wall time
        self.last_rgb: Optional[np.ndarray] = None
        self.positions: Dict[str, np.ndarray] = {}
        twist_topic = str(params.get("twist_topic", PlannerNodeConfig().twist_topic))
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.node.create_subscription(TwistStamped, twist_topic, self._on_command, reliable)
        self.node.create_subscription(String, "/planner_node/safety_state", self._on_safety, latched)
        self.node.create_subscription(String, "/planner_node/status", self._on_status, STATUS_QOS)
        self.node.create_subscription(Image, "/camera/image_raw", self._on_image, qos_profile_sensor_data)
        for key in ("ee", "block"):
            self.node.create_subscription(PointStamped, f"/sim_cell_node/{key}_position",
                                          lambda m, k=key: self._on_position(k, m), 10)
        self.twist_pub = self.node.create_publisher(TwistStamped, twist_topic, reliable)
        self.change_state = self.node.create_client(ChangeState, "/planner_node/change_state")
        self.enable_client = self.node.create_client(SetBool, "/planner_node/enable")
        self.clear_client = self.node.create_client(Trigger, "/planner_node/clear_goal")
        self.reset_client = self.node.create_client(Trigger, "/sim_cell_node/reset")
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

    def _on_command(self, msg: TwistStamped) -> None:
        self.command_times.setdefault(_ns(msg.header.stamp), time.perf_counter())

    def _on_status(self, msg: String) -> None:
        self.statuses.append(json.loads(msg.data))

    def status(self, key: str, default: Any = None) -> Any:
        """A value of the planner's newest public ~/status."""
        return self.statuses[-1].get(key, default) if self.statuses else default

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
        self._call(self.enable_client, SetBool.Request(data=on), f"planner enable={on}")

    def _transition(self, transition_id: int, what: str) -> None:
        """A lifecycle transition through the planner's ~/change_state service, as any client does it."""
        if not self.change_state.wait_for_service(timeout_sec=10.0):
            raise RuntimeError("planner ~/change_state not available")
        fut = self.change_state.call_async(ChangeState.Request(transition=Transition(id=transition_id)))
        if not self.spin_until(fut.done, 120.0) or not fut.result().success:
            raise RuntimeError(f"planner {what} failed: {self.status('detail', '') or self.status('safety_state')}")

    def _start_planner(self) -> None:
        self._transition(Transition.TRANSITION_CONFIGURE, "configure")
        if not self.cfg.realtime:
            # Phase the planner's sim-time control timer one servo tick after the camera frames.
            self.sim.advance(1)
            self.sim.advance_ticks(1)
            want = int(round(self.sim.sim_now * 1e9))
            if not self.spin_until(lambda: self.planner.get_clock().now().nanoseconds == want, 10.0):
                raise RuntimeError("the planner never received the sim's /clock")
        self._transition(Transition.TRANSITION_ACTIVATE, "activate")
        if not self.cfg.realtime:
            self.sim.advance_ticks(self.sim.ticks_per_frame - 1)  # back on the frame grid

    def close(self) -> None:
        if self.status("lifecycle_state") == "active":
            self._transition(Transition.TRANSITION_DEACTIVATE, "deactivate")
        self.executor.shutdown(timeout_sec=2.0)
        for n in (self.node, self.planner, self.sim):
            n.destroy_node()

    # ------------------------------------------------------------------ episodes
    def _reset(self, seed: int, task: str):
        if not self.cfg.realtime:
            return self.sim.reset(seed, task)
        # realtime: the sim steps on the executor; reset through its service so no callback races it
        self.sim.set_parameters([Parameter("seed", value=int(seed)), Parameter("task", value=task)])
        self._call(self.reset_client, Trigger.Request(), "sim reset")
        return self.sim.cell.goal

    def _distance(self, task: str, goal) -> float:
        if not self.cfg.realtime:
            return self.sim.cell.distance_to_goal(goal)
        key, target = ("ee", goal.ee_position) if task == "reach" else ("block", goal.block_position)
        pos = self.positions.get(key)
        return float(np.linalg.norm(pos[:2] - target[:2])) if pos is not None else float("nan")

    def _push_state(self):
        """(block xy, tool xy, tool-block contact) now: from the sim in this process (lockstep), or from its
        position topics (realtime, where contacts are not seen: None)."""
        if not self.cfg.realtime:
            cell = self.sim.cell
            return cell.block_position()[:2], cell.ee_position()[:2], tool_block_contact(cell)
        block, ee = self.positions.get("block"), self.positions.get("ee")
        return (block[:2] if block is not None else None), (ee[:2] if ee is not None else None), None

    def _track_push(self, rec: EpisodeRecord) -> None:
        """Append the block's position, and fold in contact and the tool-block distance (push episodes)."""
        block, ee, contact = self._push_state()
        if block is not None:
            rec.block_xy.append([float(x) for x in block])
            if ee is not None:
                d = float(np.linalg.norm(np.asarray(ee) - np.asarray(block)))
                rec.min_tool_block_m = d if rec.min_tool_block_m is None else min(rec.min_tool_block_m, d)
        if contact:
            rec.touched = True

    def run_episode(self, task: str, seed: int, policy: str, gif: bool) -> EpisodeRecord:
        self.set_enabled(False)
        self._call(self.clear_client, Trigger.Request(), "planner clear_goal")
        self.spin_until(lambda: not self.status("has_goal", False), 10.0)
        before = self.status("goal_count", 0)
        goal = self._reset(seed, task)
        if policy == "planner":
            ok = self.spin_until(lambda: self.status("goal_count", 0) > before and self.status("has_goal"), 10.0)
            if not ok:
                raise RuntimeError("the planner never received the goal image")
            self.set_enabled(True)
        self.positions.clear()
        if self.cfg.realtime:
            self.spin_until(lambda: len(self.positions) == 2, 2.0)
        rec = EpisodeRecord(task=task, policy=policy, seed=seed, success=False, final_distance_m=float("nan"),
                            initial_distance_m=self._distance(task, goal), steps=0,
                            frames=[] if gif else None, mode=self.mode if policy == "planner" else "")
        push = task == "push"
        if push:
            # contacts are sampled once per control tick; without one the classifier uses the closest distance
            rec.block_xy, rec.goal_xy = [], [float(x) for x in goal.block_position[:2]]
            self._track_push(rec)
        step = self._tick_realtime if self.cfg.realtime else self._tick_lockstep
        received = self.sim.commands_received
        for _ in range(self.cfg.max_steps):
            latched = step(policy, rec)
            rec.steps += 1
            rec.distances_m.append(self._distance(task, goal))
            if push:
                self._track_push(rec)
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
        try:
            rec.failure = classify_failure(trace_from_record(rec))
        except ValueError:  # realtime: a distance not yet measured (no position message)
            rec.failure = ""
        return rec

    def _random_twist(self, stamp_s: Optional[float]):
        msg = TwistStamped()
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
            # the planner holds this frame (its status says so) before its timer fires
            self.spin_until(lambda: self.status("frame_stamp_ns") == frame_ns, self.cfg.command_wait_s)
            count, sent0 = len(self.statuses), self.status("commands_sent", 0)
            sim.advance_ticks(1)  # the planner's timer fires on this tick's /clock and plans on the frame

            def planned() -> Optional[Dict[str, Any]]:
                """The status of the tick that commanded from this frame, once its command arrived here."""
                for s in self.statuses[count:]:
                    if s.get("planned_frame_stamp_ns") == frame_ns and s.get("commands_sent", 0) > sent0 \
                            and s.get("last_command_stamp_ns") in self.command_times:
                        return s
                return None

            got = self.spin_until(lambda: planned() is not None or self.safety_state in LATCHED_STOPS,
                                  self.cfg.command_wait_s)
            hit = planned()
            if hit is not None:
                rec.tick_latency_ms.append((self.command_times[hit["last_command_stamp_ns"]] - t_frame) * 1e3)
                rec.plan_iterations.append(int(hit["plan_iterations"]))  # what the wall deadline allowed
            latched = got and hit is None and self.safety_state in LATCHED_STOPS
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
        count = len(self.statuses)
        if policy == "random":
            self.twist_pub.publish(self._random_twist(None))
        self.spin_until(lambda: len(set(self.images) - seen) > 0, 2.0 / self.cfg.rate_hz)
        done = set()
        for s in self.statuses[count:]:
            frame, cmd = s.get("planned_frame_stamp_ns"), s.get("last_command_stamp_ns")
            if frame in self.images and cmd in self.command_times and frame not in done:
                done.add(frame)
                rec.tick_latency_ms.append((self.command_times[cmd] - self.images[frame]) * 1e3)
        return policy == "planner" and self.safety_state in LATCHED_STOPS

    def run(self, progress: bool = True, random_baseline: Optional[bool] = None) -> List[EpisodeRecord]:
        """Every task and seed with the planner (in this loop's mode), and the random baseline when asked
        (default: the config's ``random_baseline``)."""
        records: List[EpisodeRecord] = []
        baseline = self.cfg.random_baseline if random_baseline is None else random_baseline
        policies = ["planner", "random"] if baseline else ["planner"]
        for task in self.cfg.tasks:
            for i in range(self.cfg.episodes):
                seed = self.cfg.seed + i
                for policy in policies:
                    t0 = time.perf_counter()
                    gif = policy == "planner" and i < self.cfg.gif_episodes and self.mode == self.cfg.modes[0]
                    rec = self.run_episode(task, seed, policy, gif=gif)
                    records.append(rec)
                    if progress:
                        who = f"{policy} ({self.mode})" if policy == "planner" else policy
                        print(f"  {task:<5} seed {seed:<6} {who:<18} {'success' if rec.success else 'fail':<7} "
                              f"final {rec.final_distance_m:.3f} m (start {rec.initial_distance_m:.3f}) "
                              f"{rec.steps:>3} ticks, stop: {rec.stop_reason or '-'}, "
                              f"{rec.failure or '-'} [{time.perf_counter() - t0:.1f} s]", file=sys.stderr, flush=True)
        return records



def evaluate(cfg: EvalConfig, domain_id: Optional[int] = None, progress: bool = True) -> Dict[str, Any]:
    """Run the evaluation in each of ``cfg.modes`` (the random baseline once, with the first), then the oracle
    and the energy quality when asked. Returns {"summaries": [one per task and mode], "records", "files",
    "protocol": {task: ...}, "headline": rows, "budgets": {mode: planner budget}, "oracle", "energy_quality",
    "wall_s" (closed-loop episodes only), "checkpoint"}."""
    path = resolve_checkpoint(cfg.checkpoint)
    os.environ.setdefault("MUJOCO_GL", "egl")
    own = not rclpy.ok()
    if own:
        # A private DDS domain: the eval's /camera, /clock and commands must not reach a live robot graph.
        rclpy.init(domain_id=domain_id if domain_id is not None else private_domain_id())
    records: List[EpisodeRecord] = []
    budgets: Dict[str, Any] = {}
    tolerance: Dict[str, float] = {}
    wall = 0.0
    try:
        for i, mode in enumerate(cfg.modes):
            # one planner node per mode: planner_fixed_budget is a configure-time parameter (and so is the
            # deadline mode's auto-sizing), as on a robot
            loop = ClosedLoop(cfg, path, mode)
            try:
                budgets[mode] = loop.status("planner_budget")
                if progress:
                    print(f"planner {format_budget(mode, budgets[mode])}", file=sys.stderr, flush=True)
                t0 = time.perf_counter()
                records += loop.run(progress, random_baseline=cfg.random_baseline and i == 0)
                wall += time.perf_counter() - t0
                tolerance = dict(loop.tolerance)
            finally:
                loop.close()
    finally:
        if own and rclpy.ok():
            rclpy.shutdown()
    oracle = energy = None
    if cfg.oracle_episodes:
        if progress:
            print(f"oracle planner on {cfg.oracle_episodes} episode(s) per task ...", file=sys.stderr, flush=True)
        oracle = run_oracle(cfg, path)
    if cfg.energy_episodes:
        if progress:
            print(f"energy quality on {cfg.energy_episodes} scripted episode(s) per task ...", file=sys.stderr,
                  flush=True)
        energy = run_energy_quality(cfg, path)
    summaries = summarize_modes(cfg, records, tolerance, budgets)
    files = write_outputs(records, Path(cfg.out), tolerance)
    return {"summaries": summaries, "records": records, "files": files, "wall_s": wall,
            "protocol": {t: protocol(cfg, tolerance, t, budgets) for t in cfg.tasks}, "checkpoint": str(path),
            "headline": headline_rows(summaries, oracle, energy), "budgets": budgets, "oracle": oracle,
            "energy_quality": energy}
