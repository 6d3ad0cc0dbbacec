"""Commander: the planner node's logic, without ROS.

It holds the newest inputs (frame, joint state, goal), asks the SafetySupervisor each control tick whether it
may command, runs the PlanningEngine, clamps the result and forms the commands to publish; it handles every
stop (one stop command after motion, then silence) and keeps the counters that ``~/status`` and
``/diagnostics`` report. The node (``ros/planner_node.py``) turns the returned ``Command`` objects into
messages and feeds inputs in; it holds no logic of its own.

Time: watchdog ages use ``now_s`` (receive time on a monotonic clock; sim time may pause); command stamps
come from ``stamp_ns`` (the node clock: Servo drops stale stamps).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from ami_world_model.node_config import PlannerNodeConfig
from ami_world_model.safety import (
    PLAN,
    ZERO,
    Decision,
    InputError,
    RateMeter,
    SafetyLimits,
    SafetySupervisor,
    StopReason,
    SupervisorConfig,
    Throttle,
    check_joint_positions,
    clamp_command,
)

COMMANDING = "commanding"  # the safety state while no stop reason holds


@dataclass
class Command:
    """One command message to publish.

    ``values``: velocities in the action's physical units (twist components in ``spec.names`` order, or joint
    velocities). ``positions``: joint_trajectory only, the one point's target (fresh joint state + v * period;
    a stop holds the fresh position), reached after ``duration_s``; None for servo_twist. ``motion``: False
    for a stop. ``stamp_ns``: the header stamp (node clock, at forming).
    """

    values: List[float]
    motion: bool
    stamp_ns: int
    positions: Optional[List[float]] = None
    duration_s: float = 0.0


HOLD_MAX_AGE_PERIODS = 2.0  # a joint_trajectory stop holds a joint state at most this many periods old


def need_joint_states(cfg: PlannerNodeConfig, uses_state: bool) -> bool:
    """Joint states are watched when asked for, in joint_trajectory mode, and when the model uses them."""
    return cfg.require_joint_states or cfg.output_mode == "joint_trajectory" or uses_state


class Commander:
    """The node's state and decisions (see the module docstring). Not thread-safe: the node holds a lock."""

    def __init__(self, cfg: PlannerNodeConfig, engine: Any, joint_names: Sequence[str],
                 stamp_ns: Callable[[], int], log: Callable[[str, str], None] = lambda level, msg: None,
                 on_change: Callable[[], None] = lambda: None, now_s: Callable[[], float] = time.monotonic) -> None:
        self.cfg, self.engine = cfg, engine
        self.joint_names = list(joint_names)
        self._stamp_ns, self._log, self._on_change, self.now_s = stamp_ns, log, on_change, now_s
        self.sup = SafetySupervisor(SupervisorConfig.from_node(cfg, need_joint_states(cfg, engine.uses_state),
                                                         engine.energy_kind == "readout"),
                                    enabled=cfg.start_enabled)
        self.limits = SafetyLimits(engine.velocity_limits(), engine.accel_limits())
        self.active = False
        self.reason: Optional[StopReason] = StopReason.INACTIVE  # None while commanding
        self.prev_cmd: List[float] = [0.0] * engine.action_dim
        self.frame: Optional[np.ndarray] = None  # newest model input [3, H, W]
        self.frame_stamp_ns = 0  # its header stamp
        self._frame_seq = self._planned_seq = 0
        self.planned_frame_stamp_ns = 0  # header stamp of the frame the newest plan used
        self.joints: Optional[List[float]] = None
        self.last_step = None
        self._plan: Optional[np.ndarray] = None  # [H, A] the plan being executed between frames
        self._ticks_since_plan = 0
        self.goal_count = 0
        self.commands_sent = self.zeros_sent = 0
        self.last_command_stamp_ns = 0
        self.rejected = {"image": 0, "joint_state": 0, "goal": 0}
        self.latency_ms = {"convert_ms": 0.0, "encode_ms": 0.0, "plan_ms": 0.0}
        self.rates = {k: RateMeter() for k in ("image", "joint_state", "command")}
        self._throttle = Throttle(cfg.log_throttle_s)
        self._log("info", engine.budget_text())  # the search in use (auto-sized at configure: docs/PARAMETERS.md)

    # ------------------------------------------------------------------ state
    def apply_live(self, cfg: PlannerNodeConfig) -> None:
        """New values of the live parameters (limits, watchdog, goal and unsure settings): used from the next
        decision on. The planner's sampling bounds keep their configure-time limits; the clamp applies these."""
        self.cfg = self.engine.cfg = cfg
        self.sup.cfg = SupervisorConfig.from_node(cfg, need_joint_states(cfg, self.engine.uses_state),
                                                 self.engine.energy_kind == "readout")
        self.limits = SafetyLimits(self.engine.velocity_limits(), self.engine.accel_limits())

    @property
    def safety_state(self) -> str:
        """``commanding`` or the stop reason's value (what ``~/safety_state`` carries)."""
        return COMMANDING if self.reason is None else self.reason.value

    def activate(self) -> None:
        self.active = True
        self.sup.set_enabled(self.cfg.start_enabled)

    def deactivate(self) -> List[Command]:
        """Leaving active: ONE stop command (always, while the publisher is still active), history forgotten."""
        out = self._stop_command()
        self.active = False
        self.engine.reset()
        self._set_reason(StopReason.INACTIVE)
        return out

    # ------------------------------------------------------------------ inputs
    def reject(self, kind: str, exc: Exception) -> None:
        """Count an unusable input (``image``, ``joint_state`` or ``goal``) and log it, throttled."""
        self.rejected[kind] += 1
        if self._throttle.ready(kind, self.now_s()):
            self._log("warning", f"rejected {kind} ({self.rejected[kind]} so far): {exc}")

    def image(self, frame: np.ndarray, stamp_ns: int, convert_s: float) -> None:
        """A converted camera frame ``[3, H, W]`` with its header stamp."""
        now = self.now_s()
        self.latency_ms["convert_ms"] = convert_s * 1e3
        self.frame, self.frame_stamp_ns = frame, stamp_ns
        self._frame_seq += 1
        self.rates["image"].tick(now)
        self.sup.image_received(now)

    def joint_state(self, names: Sequence[str], positions: Sequence[float]) -> bool:
        """A JointState's names and positions; False (counted and logged) when unusable."""
        required = self.joint_names or list(self.engine.wm_config.state.names)
        try:
            self.joints = check_joint_positions(list(names), list(positions), required)
        except InputError as exc:
            self.reject("joint_state", exc)
            return False
        now = self.now_s()
        self.rates["joint_state"].tick(now)
        self.sup.joints_received(now)
        return True

    def set_goal(self, goal: np.ndarray) -> None:
        """A goal image ``[3, H, W]``: clears latched stops, forgets history (a new task)."""
        self.engine.set_goal(goal)
        self.sup.set_goal(True)
        self.goal_count += 1
        self._plan = None
        self.prev_cmd = [0.0] * len(self.prev_cmd)
        self._on_change()

    def goal_from_current(self) -> bool:
        """The current frame becomes the goal; False when there is no fresh frame."""
        last = self.sup.last_image_s
        if self.frame is None or last is None or self.now_s() - last > self.cfg.max_image_age_s:
            return False
        self.set_goal(self.frame)
        return True

    def clear_goal(self) -> List[Command]:
        self.engine.clear_goal()
        self.sup.set_goal(False)
        return self._stop(self.sup.stop(StopReason.NO_GOAL))

    def set_estop(self, engaged: bool) -> List[Command]:
        """E-stop true stops now (not at the next tick) and holds until false."""
        self.sup.set_estop(engaged)
        return self._stop(self.sup.stop(StopReason.ESTOP)) if engaged else []

    def set_enabled(self, enabled: bool) -> List[Command]:
        """``~/enable``: false stops now; true resumes and clears latched stops."""
        self.sup.set_enabled(enabled)
        return [] if enabled else self._stop(self.sup.stop(StopReason.DISABLED))

    # ------------------------------------------------------------------ the tick
    def tick(self) -> List[Command]:
        """One control period: decide, plan on a new frame, clamp; the commands to publish (maybe none)."""
        if not self.active:
            return []
        decision = self.sup.decide(self.now_s())
        if decision.action != PLAN:
            return self._stop(decision)
        if self._frame_seq == self._planned_seq:
            return self._continue_plan()  # no new frame: keep Servo fed (the watchdog covers stale input)
        self._planned_seq = self._frame_seq
        self.planned_frame_stamp_ns = self.frame_stamp_ns
        try:
            step = self.engine.step(self.frame, self.joints, self.engine.deadline_s)  # None: fixed budget
        except Exception as exc:  # noqa: BLE001 - a model failure stops the arm, not the node
            self.reject("image", exc)
            return self._stop(self.sup.stop(StopReason.MODEL_ERROR))
        self.last_step = step
        self.latency_ms["encode_ms"], self.latency_ms["plan_ms"] = step.encode_s * 1e3, step.plan_s * 1e3
        after = self.sup.after_plan(step.current_energy, step.planned_energy, step.do_nothing_energy,
                                    step.surprise_ratio)
        if after.action != PLAN:
            return self._stop(after)
        cmd = clamp_command(step.action, self.prev_cmd, self.cfg.control_period_s, self.limits)
        out = self._command(cmd, motion=True)
        if out:
            self.engine.record_sent(cmd)
            self._plan, self._ticks_since_plan = step.actions, 0
        self._set_reason(None)
        return out

    def _continue_plan(self) -> List[Command]:
        """A tick without a new frame: re-publish the current plan's action for this tick (each action is held
        for the model's step of ``skip`` ticks; the last one past the horizon), clamped. Servo halts when no
        command arrives within its incoming_command_timeout, so commanding must not depend on the camera's
        timing. Not recorded in the engine's history, which pairs one action with each frame."""
        if self._plan is None or self.reason is not None:
            return []
        self._ticks_since_plan += 1
        i = min(self._ticks_since_plan // self.engine.skip, len(self._plan) - 1)
        cmd = clamp_command([float(x) for x in self._plan[i]], self.prev_cmd, self.cfg.control_period_s,
                            self.limits)
        return self._command(cmd, motion=True)

    # ------------------------------------------------------------------ commands and stops
    def _command(self, values: List[float], motion: bool) -> List[Command]:
        """One command of the configured type; none when it cannot be formed (joint_trajectory, no joints)."""
        positions, period = None, self.cfg.control_period_s
        if self.cfg.output_mode == "joint_trajectory":
            if self.joints is None:
                return []
            positions = [p + x * period for p, x in zip(self.joints, values)]
        cmd = Command(list(values), motion, self._stamp_ns(), positions, period if positions is not None else 0.0)
        self.sup.commanded(motion)  # any planned command (even all-zero values) earns a stop later
        self.prev_cmd = list(values)
        self.commands_sent += 1
        self.last_command_stamp_ns = cmd.stamp_ns
        self.rates["command"].tick(self.now_s())
        return [cmd]

    def _stop_command(self) -> List[Command]:
        """ONE stop: a zero twist; in joint_trajectory mode a point holding a FRESH joint state.

        A JTC rejects an empty trajectory ("Empty trajectory received"), and holding an old joint state would
        drive the arm back to where it was. Without a state at most HOLD_MAX_AGE_PERIODS old nothing is sent:
        the last trajectory (positions only, zero end velocity) brings the arm to rest within one period,
        which is the controller's own behaviour (docs/SAFETY.md)."""
        if not self.active:
            return []
        n = len(self.prev_cmd)
        if self.cfg.output_mode == "joint_trajectory" and not self._joints_fresh_for_hold():
            self.sup.commanded(False)
            self.prev_cmd = [0.0] * n
            return []
        self.zeros_sent += 1
        return self._command([0.0] * n, motion=False)

    def _joints_fresh_for_hold(self) -> bool:
        last = self.sup.last_joint_s
        max_age = min(self.cfg.max_joint_state_age_s, HOLD_MAX_AGE_PERIODS * self.cfg.control_period_s)
        return self.joints is not None and last is not None and self.now_s() - last <= max_age

    def _stop(self, decision: Decision) -> List[Command]:
        """The stop's command (if any); on a new reason forget history and warm start, report the reason."""
        out = self._stop_command() if decision.action == ZERO else []
        self._plan = None  # never resume an old plan: the next command is planned from a new frame
        if self.reason != decision.reason:
            self.engine.reset()  # after a pause, re-read the world before commanding again
            self.prev_cmd = [0.0] * len(self.prev_cmd)
        self._set_reason(decision.reason)
        return out

    def _set_reason(self, reason: Optional[StopReason]) -> None:
        if reason == self.reason:
            return
        self.reason = reason
        if reason is not None and self._throttle.ready(f"stop:{reason}", self.now_s()):
            self._log("info", f"not commanding: {reason}")
        self._on_change()

    # ------------------------------------------------------------------ observability
    def status(self) -> Dict[str, Any]:
        """The public per-tick status (``~/status``, see docs/PARAMETERS.md); JSON-ready values."""
        step, sup = self.last_step, self.sup
        return {
            "safety_state": self.safety_state,
            "latched": sup.latched.value if sup.latched else "",
            "has_goal": sup.has_goal,
            "goal_count": self.goal_count,
            "enabled": sup.enabled,
            "estop": sup.estop,
            "frame_stamp_ns": self.frame_stamp_ns,
            "planned_frame_stamp_ns": self.planned_frame_stamp_ns,
            "plan_iterations": step.iterations if step else 0,
            "grad_steps": step.grad_steps if step else 0,
            "energy": _finite(step.current_energy) if step else None,
            "last_command_stamp_ns": self.last_command_stamp_ns,
            "commands_sent": self.commands_sent,
            "zero_commands_sent": self.zeros_sent,
            "backend": getattr(self.engine.backend, "name", "?"),
            "rejected": dict(self.rejected),
            "planner_budget": self.engine.budget_info(),
        }

    def diagnostic_values(self) -> Dict[str, str]:
        """Key/values for ``/diagnostics`` (everything but the lifecycle state)."""
        now, sup, step = self.now_s(), self.sup, self.last_step
        age = now - sup.last_image_s if sup.last_image_s is not None else float("inf")
        values = {
            "safety_state": self.safety_state,
            "backend": getattr(self.engine.backend, "name", "?"),
            "image_rate_hz": f"{self.rates['image'].current(now):.2f}",
            "images_received": str(self.rates["image"].count),
            "joint_state_rate_hz": f"{self.rates['joint_state'].current(now):.2f}",
            "image_age_s": f"{age:.3f}",
            **{k: f"{v:.2f}" for k, v in self.latency_ms.items()},
            "energy": f"{step.current_energy:.4f}" if step else "nan",
            "planned_energy": f"{step.planned_energy:.4f}" if step else "nan",
            "do_nothing_energy": f"{step.do_nothing_energy:.4f}" if step else "nan",
            "surprise_ratio": f"{step.surprise_ratio:.3f}" if step and step.surprise_ratio is not None else "nan",
            "plan_iterations": str(step.iterations) if step else "0",
            **{f"planner_{k}": _diag_value(v) for k, v in self.engine.budget_info().items()},
            "command_rate_hz": f"{self.rates['command'].current(now):.2f}",
            "commands_sent": str(self.commands_sent),
            "zero_commands_sent": str(self.zeros_sent),
            "has_goal": str(sup.has_goal),
            "enabled": str(sup.enabled),
            "estop": str(sup.estop),
        }
        values.update({f"rejected_{k}": str(v) for k, v in self.rejected.items()})
        values.update({k: str(v) for k, v in sup.counters.items()})
        values.update({f"stops_{k}": str(v) for k, v in sup.stops.items()})
        return values


def _diag_value(v: Any) -> str:
    """A /diagnostics string: seconds-valued floats as they are, ``none`` for a missing deadline."""
    if v is None:
        return "none"
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _finite(x: float) -> Optional[float]:
    return float(x) if np.isfinite(x) else None
