"""The planner node's safety logic as small, pure state machines (no ROS, no torch: unit-testable).

The node asks :class:`SafetySupervisor` once per control tick whether it may plan, and tells it what the
plan and the model said afterwards. Every stop publishes ONE zero command (if a planned command went out since
the last zero) and then stays silent, so a downstream controller's own timeout takes over. See
docs/SAFETY.md for why each signal was chosen.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional, Sequence


class StopReason(str, Enum):
    """Why the node is not commanding: the one list, used by the supervisor, the node's ``~/safety_state``,
    ``~/status`` and ``/diagnostics``, and the eval harness. The value is what those topics carry."""

    UNCONFIGURED = "unconfigured"  # lifecycle: no model loaded (also after a failed configure)
    CONFIGURE_FAILED = "configure_failed"
    INACTIVE = "inactive"  # lifecycle: configured, not active
    ESTOP = "estop"
    DISABLED = "disabled"
    STALE_IMAGE = "stale_image"
    STALE_JOINTS = "stale_joint_state"
    NO_GOAL = "no_goal"
    GOAL_REACHED = "goal_reached"
    UNSURE_SURPRISE = "unsure_surprise"
    UNSURE_NO_PROGRESS = "unsure_no_progress"
    NON_FINITE_ENERGY = "non_finite_energy"
    MODEL_ERROR = "model_error"

    def __str__(self) -> str:  # f-strings and logs show the value on every Python version
        return self.value

    @property
    def latches(self) -> bool:
        """Latched stops hold until ``~/enable`` true or a new goal; all others clear with their cause."""
        return self in LATCHED

    @property
    def severity(self) -> str:
        """``ok``, ``warn`` or ``error``: the /diagnostics level of a node stopped for this reason."""
        return "error" if self is StopReason.CONFIGURE_FAILED else "warn" if self in WARN else "ok"


LATCHED = frozenset({StopReason.GOAL_REACHED, StopReason.UNSURE_SURPRISE, StopReason.UNSURE_NO_PROGRESS})
# A stop someone should look at (input lost, model out of its depth or failing, e-stop); goal reached,
# disabled, no goal and inactive are expected states.
WARN = frozenset({StopReason.UNCONFIGURED, StopReason.ESTOP, StopReason.STALE_IMAGE, StopReason.STALE_JOINTS,
                  StopReason.UNSURE_SURPRISE, StopReason.UNSURE_NO_PROGRESS, StopReason.NON_FINITE_ENERGY,
                  StopReason.MODEL_ERROR})

PLAN = "plan"
ZERO = "zero"
SILENT = "silent"


class InputError(ValueError):
    """An input message cannot be used (wrong encoding, size, NaN, empty); the message says why."""


@dataclass
class Decision:
    """What the node does this tick: ``plan`` (and then publish), publish one ``zero``, or stay ``silent``."""

    action: str
    reason: Optional[StopReason] = None


@dataclass
class SafetyLimits:
    """Per-component velocity and acceleration bounds for one command vector."""

    max_velocity: List[float]
    max_accel: List[float]

    def __post_init__(self) -> None:
        if len(self.max_velocity) != len(self.max_accel):
            raise ValueError("SafetyLimits: max_velocity and max_accel must have one entry per component")
        if any(v < 0 for v in self.max_velocity) or any(a < 0 for a in self.max_accel):
            raise ValueError("SafetyLimits: limits must be non-negative")


def clamp_command(v: Sequence[float], previous: Sequence[float], dt_s: float, limits: SafetyLimits) -> List[float]:
    """Clamp ``v`` to +-max_velocity, then limit its change from ``previous`` to max_accel * dt_s.

    Non-finite components become 0 (never command from a NaN). The acceleration limit applies between
    motion commands; stopping (an explicit zero command) is never slowed down by it, by design.
    """
    if len(v) != len(limits.max_velocity) or len(previous) != len(v):
        raise ValueError(f"clamp_command: got {len(v)} components, limits have {len(limits.max_velocity)}")
    out = []
    for x, p, vmax, amax in zip(v, previous, limits.max_velocity, limits.max_accel):
        x = float(x) if math.isfinite(float(x)) else 0.0
        p = float(p) if math.isfinite(float(p)) else 0.0
        x = min(max(x, -vmax), vmax)
        step = amax * max(dt_s, 0.0)
        x = min(max(x, p - step), p + step)
        out.append(x)
    return out


def check_joint_positions(names: Sequence[str], positions: Sequence[float],
                          required: Sequence[str]) -> List[float]:
    """Positions of ``required`` joints (in that order) from a JointState; InputError when unusable."""
    if len(names) == 0 or len(positions) == 0:
        raise InputError("joint state is empty")
    if len(names) != len(positions):
        raise InputError(f"joint state has {len(names)} names but {len(positions)} positions")
    index = {n: i for i, n in enumerate(names)}
    missing = [n for n in required if n not in index]
    if missing:
        raise InputError(f"joint state lacks joint(s) {missing}")
    picked = [float(positions[index[n]]) for n in required] if required else [float(p) for p in positions]
    bad = [n for n, p in zip(required or names, picked) if not math.isfinite(p)]
    if bad:
        raise InputError(f"joint state has non-finite position(s) for {bad}")
    return picked


class Throttle:
    """At most one event per key every ``period_s`` (throttled logs); pure, the caller passes time."""

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self._last: Dict[str, float] = {}

    def ready(self, key: str, now_s: float) -> bool:
        last = self._last.get(key)
        if last is not None and now_s - last < self.period_s:
            return False
        self._last[key] = now_s
        return True


class RateMeter:
    """Exponentially smoothed event rate in Hz (for diagnostics)."""

    def __init__(self, tau_s: float = 2.0) -> None:
        self.tau_s = tau_s
        self.rate_hz = 0.0
        self.last_s: Optional[float] = None
        self.count = 0

    def tick(self, now_s: float) -> None:
        self.count += 1
        if self.last_s is not None and now_s > self.last_s:
            dt = now_s - self.last_s
            alpha = min(1.0, dt / self.tau_s)
            self.rate_hz += alpha * (1.0 / dt - self.rate_hz)
        self.last_s = now_s

    def current(self, now_s: float) -> float:
        """The rate, decayed toward 0 when events stop arriving (a dead camera must not read 30 Hz)."""
        if self.last_s is None:
            return 0.0
        gap = now_s - self.last_s
        return min(self.rate_hz, 1.0 / gap) if gap > 0 else self.rate_hz


@dataclass
class SupervisorConfig:
    """The supervisor's settings: no defaults of its own, built from the node's config by ``from_node``
    (PlannerNodeConfig holds the one default and description of each)."""

    max_image_age_s: float
    max_joint_state_age_s: float
    require_joint_states: bool
    goal_energy_threshold: float
    goal_reached_ticks: int
    surprise_ratio_threshold: float
    surprise_ticks: int  # 0 disables
    no_progress_ticks: int  # 0 disables
    no_progress_margin: float

    @classmethod
    def from_node(cls, cfg: Any, require_joint_states: bool, readout_energy: bool = False) -> SupervisorConfig:
        """From a PlannerNodeConfig (duck-typed: this module stays import-light). ``require_joint_states`` is
        the resolved need (the parameter, or forced by the output mode / the model's proprioception).
        ``readout_energy``: the planner's energy is the read-out distance (metres), so the goal threshold is
        ``goal_distance_threshold_m`` rather than the latent ``goal_energy_threshold``."""
        names = [f for f in cls.__dataclass_fields__ if f != "require_joint_states"]
        values = {n: getattr(cfg, n) for n in names}
        if readout_energy:
            values["goal_energy_threshold"] = cfg.goal_distance_threshold_m
        return cls(require_joint_states=require_joint_states, **values)


@dataclass
class SafetySupervisor:
    """Decides, each tick, whether the node may command; latches goal-reached and unsure stops.

    Latched stops (goal reached, unsure) clear only on re-enable or a new goal: the model said it is
    done or out of its depth, and a person (or a new task) must say otherwise. Watchdog, e-stop and
    disable are live conditions: they clear as soon as the condition does.
    """

    cfg: SupervisorConfig
    enabled: bool = True
    estop: bool = False
    has_goal: bool = False
    latched: Optional[StopReason] = None
    last_image_s: Optional[float] = None
    last_joint_s: Optional[float] = None
    motion_since_zero: bool = False  # a planned command went out since the last stop zero
    _below_goal: int = 0
    _surprised: int = 0
    _no_progress: int = 0
    stops: Dict[str, int] = field(default_factory=dict)  # how often each reason stopped motion

    # --- inputs ---
    def image_received(self, now_s: float) -> None:
        self.last_image_s = now_s

    def joints_received(self, now_s: float) -> None:
        self.last_joint_s = now_s

    def set_enabled(self, enabled: bool) -> None:
        self.enabled = enabled
        if enabled:
            self._clear_latch()

    def set_estop(self, active: bool) -> None:
        self.estop = active

    def set_goal(self, present: bool) -> None:
        """A new goal (or none): clears latched stops, a new task starts."""
        self.has_goal = present
        self._clear_latch()

    def _clear_latch(self) -> None:
        self.latched = None
        self._below_goal = self._surprised = self._no_progress = 0

    # --- per tick ---
    def joints_fresh(self, now_s: float) -> bool:
        return self.last_joint_s is not None and now_s - self.last_joint_s <= self.cfg.max_joint_state_age_s

    def blocking_reason(self, now_s: float) -> Optional[StopReason]:
        """The most important reason not to command now (in this order), or None when commanding is allowed."""
        if self.estop:
            return StopReason.ESTOP
        if not self.enabled:
            return StopReason.DISABLED
        if self.last_image_s is None or now_s - self.last_image_s > self.cfg.max_image_age_s:
            return StopReason.STALE_IMAGE
        if self.cfg.require_joint_states and not self.joints_fresh(now_s):
            return StopReason.STALE_JOINTS
        if not self.has_goal:
            return StopReason.NO_GOAL
        return self.latched

    def decide(self, now_s: float) -> Decision:
        """Before planning: plan, or stop (one zero if motion went out since the last zero, else silence)."""
        reason = self.blocking_reason(now_s)
        return Decision(PLAN) if reason is None else self.stop(reason)

    def stop(self, reason: StopReason) -> Decision:
        """Stop for ``reason``: one zero after motion, silence otherwise."""
        if self.motion_since_zero:
            self.motion_since_zero = False
            self.stops[reason] = self.stops.get(reason, 0) + 1
            return Decision(ZERO, reason)
        return Decision(SILENT, reason)

    def after_plan(self, current_energy: float, planned_energy: float, do_nothing_energy: float,
                   surprise_ratio: Optional[float]) -> Decision:
        """After planning: latch goal-reached / unsure stops; otherwise the plan may be published.

        Args:
            current_energy: energy of the current latent to the goal (how far we are now).
            planned_energy: the best plan's energy. do_nothing_energy: energy of the all-zero plan.
            surprise_ratio: one-step prediction error / its validation scale; None on the first tick.
        """
        c = self.cfg
        self._below_goal = self._below_goal + 1 if current_energy < c.goal_energy_threshold else 0
        if self._below_goal >= c.goal_reached_ticks:
            self.latched = StopReason.GOAL_REACHED
            return self.stop(StopReason.GOAL_REACHED)
        ratio_ok = surprise_ratio is None or (math.isfinite(surprise_ratio)
                                             and surprise_ratio <= c.surprise_ratio_threshold)
        self._surprised = 0 if ratio_ok else self._surprised + 1
        if c.surprise_ticks > 0 and self._surprised >= c.surprise_ticks:
            self.latched = StopReason.UNSURE_SURPRISE
            return self.stop(StopReason.UNSURE_SURPRISE)
        finite = math.isfinite(planned_energy) and math.isfinite(do_nothing_energy)
        progress = finite and planned_energy < do_nothing_energy * (1.0 - c.no_progress_margin)
        self._no_progress = 0 if progress else self._no_progress + 1
        if c.no_progress_ticks > 0 and self._no_progress >= c.no_progress_ticks:
            self.latched = StopReason.UNSURE_NO_PROGRESS
            return self.stop(StopReason.UNSURE_NO_PROGRESS)
        if not finite:
            return self.stop(StopReason.NON_FINITE_ENERGY)
        return Decision(PLAN)

    def commanded(self, nonzero: bool) -> None:
        """Record that a command went out: a planned one (``nonzero`` True, whatever its values) earns one
        stop zero later; a stop zero (False) resets the bookkeeping."""
        self.motion_since_zero = bool(nonzero)

    @property
    def counters(self) -> Dict[str, int]:
        return {"ticks_below_goal": self._below_goal, "ticks_surprised": self._surprised,
                "ticks_no_progress": self._no_progress}
