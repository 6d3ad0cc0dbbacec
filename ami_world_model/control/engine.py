"""The planner node's model side, without rclpy: backend + planner + goal + history + surprise.

Kept apart from the ROS node so the node stays a thin shell (callbacks, QoS, messages) and this part
can be tested and benchmarked without a ROS graph.

Grad mode: encoding, energies and the surprise prediction run under ``torch.no_grad``; planning does not,
so the planner's gradient refinement (``planner.grad_refine_steps`` > 0, torch backend) can build its graph.
"""
from __future__ import annotations

import dataclasses
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from ami_world_model.config import ConfigError
from ami_world_model.data.frame_skip import step_mean_action
from ami_world_model.data.image_decoding import parse_crop
from ami_world_model.node_config import PlannerNodeConfig
from ami_world_model.planning import (
    PoseState,
    RecedingHorizonController,
    WorldModelState,
    make_pose_dynamics,
    make_world_model_dynamics,
)
from ami_world_model.planning.budget import BudgetChoice, choose_budget, make_planner_rollout, make_rollout_timer
from ami_world_model.planning.energy import make_energy, make_pose_energy, resolve_dynamics_kind, resolve_energy_kind

TWIST_FIELDS = tuple(f"{a}.{c}" for a in ("linear", "angular") for c in "xyz")
# Auto-sizing times each rollout size this many times and takes the median: on a loaded machine one slow
# outlier must not shrink the search (nor one lucky run inflate it).
AUTOSIZE_REPEATS = 5
AUTOSIZE_MIN_SAMPLES = 8  # fewer candidates than this is hardly a search (CEM needs elites to refit)


def open_backend(path: Path, cfg: PlannerNodeConfig):
    """The configured backend for checkpoint ``path`` (stem), sized for the planner's batch. Raises the
    loader's error on failure."""
    from ami_world_model.inference.backends import make_backend

    return make_backend(str(path), kind=cfg.backend, device=cfg.device, cache_dir=cfg.engine_cache_dir or None,
                        precision="fp16" if cfg.enable_fp16 else "fp32",
                        max_batch=cfg.planner.num_samples, onnx_dir=cfg.onnx_dir or None,
                        num_threads=cfg.backend_num_threads or None)


@dataclass
class StepResult:
    """One control tick's model output."""

    action: List[float]  # first planned action, physical units (before the node's clamp)
    actions: np.ndarray  # [H, A] the whole plan
    current_energy: float  # energy of the current frame's latent to the goal
    planned_energy: float
    do_nothing_energy: float
    surprise_ratio: Optional[float]  # None when there was no prediction for this frame
    iterations: int
    grad_steps: int  # gradient-refinement steps run (planner.grad_refine_steps > 0, torch backend)
    encode_s: float
    plan_s: float


class PlanningEngine:
    """Encodes frames, plans towards the goal, and measures one-step surprise."""

    def __init__(self, cfg: PlannerNodeConfig, checkpoint: Path) -> None:
        self.cfg = cfg
        self.backend = open_backend(checkpoint, cfg)
        wm = self.backend.config
        self.wm_config = wm
        self.image_hw = (wm.image.height, wm.image.width)
        self.crop = parse_crop(cfg.image_crop)  # camera and goal frames: the same crop as in training
        self.spec = wm.action
        self.k = wm.context_frames
        self.uses_state = wm.state.dim > 0
        metric = wm.metrics.get("val_one_step_l1") if isinstance(wm.metrics, dict) else None
        ok = isinstance(metric, (int, float)) and math.isfinite(metric) and metric > 0
        self.surprise_scale = float(metric) if ok else cfg.surprise_scale_fallback
        self.surprise_scale_source = "checkpoint val_one_step_l1" if ok else "surprise_scale_fallback"
        n = wm.action.dim
        vmax = self.velocity_limits()
        low = [max(lo, -v) for lo, v in zip(self.spec.low, vmax)]
        high = [min(hi, v) for hi, v in zip(self.spec.high, vmax)]
        if any(lo >= hi for lo, hi in zip(low, high)):  # limits of 0 would leave no room: clamp later
            low, high = list(self.spec.low), list(self.spec.high)
        pcfg = cfg.planner
        self._bounds = (low, high)
        self.planner_cfg = pcfg  # the search in use: cfg.planner, or less after auto-sizing (warm_up)
        self.budget: Optional[BudgetChoice] = None  # the auto-sizing's measurement and choice, when it ran
        self._budget_overhead_s = 0.0  # its measured per-tick work outside the search
        self.controller = RecedingHorizonController(pcfg, low, high, device=self.backend.device)
        # "auto": the read-out distance when the model has the head (a block-aware energy), else latent L1
        self.energy_kind = resolve_energy_kind(pcfg.energy, self.backend.has_readout)
        self.energy = make_energy(self.energy_kind, self.backend.readout)
        self._state_vec: Optional[torch.Tensor] = None
        self.dynamics = make_world_model_dynamics(self._next, self.k)
        # What the planner steps (planner.dynamics): the latent predictor, or the read-out-space head
        # (models/pose_dynamics.py) from the positions the read-out sees now, to those it sees in the goal
        # image. The latent predictor gives the one-step surprise either way.
        self.dynamics_kind = resolve_dynamics_kind(pcfg.dynamics, self.backend.pose_dynamics is not None,
                                                   self.energy_kind)
        if self.dynamics_kind == "pose":
            self.plan_dynamics: Callable[..., Any] = make_pose_dynamics(self.backend.pose_dynamics)
            self.plan_energy: Callable[..., torch.Tensor] = make_pose_energy(self.backend.readout)
        else:
            self.plan_dynamics, self.plan_energy = self.dynamics, self.energy
        self.goal: Optional[torch.Tensor] = None  # [1, N, D]
        self.plan_goal: Optional[torch.Tensor] = None  # what the planner's energy compares with: goal or [P]
        self.goal_image: Optional[np.ndarray] = None  # [3, H, W]
        # A model trained with frame skip steps `skip` control ticks at once (its action is the mean command
        # over those ticks). The node still commands every tick; the history below is kept per tick.
        self.skip = max(1, round(self.spec.dt_s / cfg.control_period_s))
        self._z_ticks: List[torch.Tensor] = []  # [N, D] the frame of each tick, newest last
        self._a_ticks: List[torch.Tensor] = []  # [A] the action sent after each frame in _z_ticks
        self._predicted: Optional[torch.Tensor] = None  # [N, D] predicted latent of the next tick's frame
        self.action_dim = n

    # --- validation ---
    def velocity_limits(self) -> List[float]:
        c = self.cfg
        return self._per_component(c.max_linear_velocity_mps, c.max_angular_velocity_radps, c.max_joint_velocity_radps)

    def accel_limits(self) -> List[float]:
        c = self.cfg
        return self._per_component(c.max_linear_accel_mps2, c.max_angular_accel_radps2, c.max_joint_accel_radps2)

    def _per_component(self, linear: float, angular: float, joint: float) -> List[float]:
        """One limit per action component: twist components by their group, joint velocities all alike."""
        if self.spec.kind == "twist":
            return [linear if n.startswith("linear") else angular for n in self.spec.names]
        return [joint] * self.spec.dim

    def validate_output(self, output_mode: str, joint_names: List[str]) -> List[str]:
        """Check the action spec fits ``output_mode``; returns the joint names to command (may be empty)."""
        spec = self.spec
        if output_mode == "servo_twist":
            if spec.kind != "twist":
                raise ConfigError(f"output_mode servo_twist needs a checkpoint with kind='twist' actions; this "
                                  f"one has kind={spec.kind!r} names={spec.names}")
            bad = [n for n in spec.names if n not in TWIST_FIELDS]
            if bad:
                raise ConfigError(f"twist action names {bad} are not TwistStamped fields {list(TWIST_FIELDS)}")
            return []
        if spec.kind != "joint_velocity":
            raise ConfigError(f"output_mode joint_trajectory needs kind='joint_velocity' actions; this "
                              f"checkpoint has kind={spec.kind!r} names={spec.names}")
        if joint_names and list(joint_names) != list(spec.names):
            raise ConfigError(f"joint_names {list(joint_names)} differ from the checkpoint's action names "
                              f"{spec.names} (same joints, same order)")
        return list(spec.names)

    @property
    def mode(self) -> str:
        """``fixed`` (every iteration, no deadline: evaluation) or ``deadline`` (the robot's mode)."""
        return "fixed" if self.cfg.planner_fixed_budget else "deadline"

    @property
    def deadline_s(self) -> Optional[float]:
        """The planner's wall-time budget per tick; None in fixed-budget mode."""
        return None if self.cfg.planner_fixed_budget else self.cfg.control_period_s * self.cfg.planner_deadline_fraction

    @torch.no_grad()
    def warm_up(self, clock: Callable[[], float] = time.perf_counter) -> None:
        """One encode + one planner-sized predictor call at configure time: shape problems surface as a
        configure failure, and the first control tick does not pay for lazy initialisation. Then, in deadline
        mode with ``planner_autosize``, size the search to the deadline (``autosize``; ``clock`` times it)."""
        h, w = self.image_hw
        z = self.encode(np.zeros((3, h, w), np.float32))  # [N, D]
        if z.shape != (self.wm_config.num_latents, self.wm_config.latent_dim):
            raise ConfigError(f"backend encodes to {tuple(z.shape)}, the checkpoint says "
                              f"{(self.wm_config.num_latents, self.wm_config.latent_dim)}")
        if self.uses_state:
            self._state_vec = torch.zeros(self.wm_config.state.dim, device=self.backend.device)
        state = WorldModelState.from_history(z[None], None, self.k, self.action_dim)
        n = self.cfg.planner.num_samples
        actions = torch.zeros(n, self.action_dim, device=self.backend.device)
        self.dynamics(state.expand_batch(n), actions)
        if self.dynamics_kind == "pose":
            self.plan_dynamics(self._pose_state(z).expand_batch(n), actions)
        if self.deadline_s is not None and self.cfg.planner_autosize:
            self.autosize(image=np.zeros((3, h, w), np.float32), clock=clock)

    @torch.no_grad()
    def autosize(self, image: np.ndarray, clock: Callable[[], float] = time.perf_counter) -> BudgetChoice:
        """Time one batched rollout (what an iteration costs) and the per-tick work outside the search on
        ``image``, choose the largest search that fits the deadline (``planning/budget.py``) and plan with it
        from now on. Never above the configured ``planner.num_samples`` / ``iterations``; ``top_k`` is scaled
        with the samples. Each size is timed AUTOSIZE_REPEATS times (median)."""
        deadline = self.deadline_s
        if deadline is None:
            raise RuntimeError("autosize: fixed-budget mode has no deadline to fit")
        pcfg = self.cfg.planner
        z = self.encode(image)  # [N, D]
        if self.dynamics_kind == "pose":
            state: Any = self._pose_state(z)
            goal = state.positions[0]  # [P]
        else:
            state = WorldModelState.from_history(z[None], None, self.k, self.action_dim)
            goal = z.unsqueeze(0)  # [1, N, D]
        rollout = make_planner_rollout(self.plan_dynamics, state, goal, pcfg.horizon_steps, self.action_dim,
                                       self.plan_energy)
        timer = make_rollout_timer(rollout, repeats=AUTOSIZE_REPEATS, warmup=1, clock=clock)
        zero = torch.zeros(1, self.action_dim, device=self.backend.device)

        def outside_search() -> float:  # encode the frame + predict its successor (surprise), batch 1
            t0 = clock()
            self.dynamics(WorldModelState.from_history(self.encode(image)[None], None, self.k, self.action_dim), zero)
            return clock() - t0

        overhead = statistics.median(outside_search() for _ in range(AUTOSIZE_REPEATS))
        choice = choose_budget(timer, deadline, pcfg.num_samples, pcfg.iterations,
                               min_samples=min(pcfg.num_samples, AUTOSIZE_MIN_SAMPLES), overhead_s=overhead)
        if choice.reduced:
            top_k = max(1, min(choice.num_samples, round(pcfg.top_k * choice.num_samples / pcfg.num_samples)))
            self.planner_cfg = dataclasses.replace(pcfg, num_samples=choice.num_samples,
                                                   iterations=choice.iterations, top_k=top_k)
        else:
            self.planner_cfg = pcfg
        self.controller = RecedingHorizonController(self.planner_cfg, *self._bounds, device=self.backend.device)
        self.budget = choice
        self._budget_overhead_s = overhead
        return choice

    def budget_info(self) -> Dict[str, Any]:
        """The search in use and where it comes from (JSON-ready; ~/status, /diagnostics, the eval's JSON).

        ``autosize``: ``off`` (fixed-budget mode or planner_autosize false), ``not_run`` (no warm-up yet),
        ``kept`` (the configured budget fits), ``reduced`` or ``too_slow`` (even the smallest search overruns)."""
        p, c = self.planner_cfg, self.budget
        if self.deadline_s is None or not self.cfg.planner_autosize:
            state = "off"
        elif c is None:
            state = "not_run"
        else:
            state = "reduced" if c.reduced and c.fits else ("too_slow" if not c.fits else "kept")
        info: Dict[str, Any] = {
            "mode": self.mode, "dynamics": self.dynamics_kind, "method": p.method, "num_samples": p.num_samples,
            "iterations": p.iterations,
            "top_k": p.top_k, "horizon_steps": p.horizon_steps, "deadline_s": self.deadline_s, "autosize": state,
            "configured_num_samples": self.cfg.planner.num_samples,
            "configured_iterations": self.cfg.planner.iterations,
        }
        if c is not None and state != "off":
            info.update(measured_iteration_s=c.iteration_s, predicted_tick_s=c.tick_s,
                        overhead_s=self._budget_overhead_s)
        return info

    def budget_text(self) -> str:
        """One log line: the search in use, and the auto-sizing's measurement when it ran."""
        b = self.budget_info()
        text = (f"planner budget ({b['mode']} mode): {b['method']} {b['num_samples']} samples x {b['iterations']} "
                f"iterations, top {b['top_k']}, H = {b['horizon_steps']}")
        if b["deadline_s"] is None:
            return text + ", no deadline (every iteration runs)"
        text += f", deadline {b['deadline_s'] * 1e3:.0f} ms"
        if b["autosize"] in ("off", "not_run"):
            return text + f" (auto-sizing {b['autosize'].replace('_', ' ')})"
        return text + (f" (auto-sized, {b['autosize']}: configured {b['configured_num_samples']} x "
                       f"{b['configured_iterations']}; one rollout {b['measured_iteration_s'] * 1e3:.1f} ms, "
                       f"outside the search {b['overhead_s'] * 1e3:.1f} ms, predicted tick "
                       f"{b['predicted_tick_s'] * 1e3:.1f} ms)")

    # --- goal and history ---
    @torch.no_grad()
    def encode(self, image: np.ndarray) -> torch.Tensor:
        """[3, H, W] float32 -> [N, D]."""
        x = torch.from_numpy(np.ascontiguousarray(image)).unsqueeze(0)
        return self.backend.encode(x)[0]

    def set_goal(self, image: np.ndarray) -> None:
        self.goal = self.encode(image).unsqueeze(0)
        self.plan_goal = self._positions(self.goal[0]) if self.dynamics_kind == "pose" else self.goal
        self.goal_image = image
        self.reset()

    def clear_goal(self) -> None:
        self.goal = None
        self.plan_goal = None
        self.goal_image = None
        self.reset()

    @torch.no_grad()
    def _positions(self, z: torch.Tensor) -> torch.Tensor:
        """``[P]`` the positions the read-out sees in ``z [N, D]``."""
        return self.backend.readout(z[None])[0]

    def _pose_state(self, z: torch.Tensor) -> PoseState:
        """Batch-1 read-out-space state: the positions the read-out sees in ``z [N, D]`` and the joint state."""
        state = self._state_vec[None] if self.uses_state else None
        return PoseState(self._positions(z)[None], state)

    def reset(self) -> None:
        """Forget history, pending prediction and warm start (after any stop: re-read the world)."""
        self._z_ticks.clear()
        self._a_ticks.clear()
        self._predicted = None
        self.controller.reset()

    def _next(self, z: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        states = None
        if self.uses_state:  # proprioception is not predicted: hold the current state over the rollout
            states = self._state_vec.view(1, 1, -1).expand(z.shape[0], z.shape[1], -1)
        return self.backend.next(z, actions, states)

    # --- the tick ---
    def step(self, image: np.ndarray, joint_state: Optional[List[float]], deadline_s: Optional[float]) -> StepResult:
        """Encode the newest frame, measure surprise, plan; returns the first action (not yet sent).

        ``deadline_s``: the tick's wall-time budget from now; None runs every configured iteration."""
        if self.goal is None:
            raise RuntimeError("PlanningEngine.step called without a goal")
        if self.uses_state:
            if joint_state is None or len(joint_state) != self.wm_config.state.dim:
                raise ValueError(f"the model needs {self.wm_config.state.dim} state values, got {joint_state}")
            self._state_vec = torch.tensor(joint_state, dtype=torch.float32, device=self.backend.device)
        t0 = time.perf_counter()
        z = self.encode(image)  # [N, D]
        t1 = time.perf_counter()
        surprise = None
        if len(self._a_ticks) < len(self._z_ticks):
            self.reset()  # the last frame got no command (a stop): the chain of frames and actions is broken
        if self._predicted is not None:
            surprise = float((self._predicted - z).abs().mean()) / self.surprise_scale
        self._predicted = None
        self._z_ticks.append(z)
        state0 = self._pose_state(z) if self.dynamics_kind == "pose" else self._state_at(len(self._z_ticks) - 1)
        with torch.no_grad():
            current = float(self.plan_energy(state0, self.plan_goal)[0])
        remaining = None if deadline_s is None else max(1e-3, deadline_s - (time.perf_counter() - t0))
        res = self.controller.plan(state0, self.plan_goal, self.plan_dynamics, deadline_s=remaining,
                                   energy=self.plan_energy)
        t2 = time.perf_counter()
        action = [float(x) for x in res.actions[0].tolist()]
        return StepResult(action, res.actions.detach().cpu().numpy(), current, float(res.energy),
                          float(res.zero_action_energy), surprise, int(res.iterations), int(res.grad_steps),
                          t1 - t0, t2 - t1)

    @torch.no_grad()
    def record_sent(self, action: List[float]) -> None:
        """The action actually sent after the newest frame: keep it and predict the next frame's latent.

        The prediction starts from the frame ``skip`` ticks before the next one, with the mean of the actions
        sent since: the same frames and actions the model was trained on (windows with frame skip).
        """
        if len(self._z_ticks) != len(self._a_ticks) + 1:
            return
        self._a_ticks.append(torch.tensor(action, dtype=torch.float32, device=self.backend.device))
        keep = self.k * self.skip  # enough ticks for the next frame's k-frame context
        del self._z_ticks[:-keep], self._a_ticks[:-keep]
        i = len(self._z_ticks) - self.skip  # the model frame whose one-step outcome is the next tick's frame
        if i >= 0:
            self._predicted = self.dynamics(self._state_at(i), self._mean_action(i).unsqueeze(0)).latest[0]

    def _state_at(self, i: int) -> WorldModelState:
        """Batch-1 planner state whose newest frame is tick ``i``: frames ``i, i-skip, ...`` (k at most, padded
        by ``from_history`` at the start) and the mean action sent over each interval between them."""
        s = self.skip
        first = i - s * (min(self.k, i // s + 1) - 1)
        z = torch.stack(self._z_ticks[first:i + 1:s])
        acts = torch.stack([self._mean_action(f) for f in range(first, i, s)]) if i > first else None
        return WorldModelState.from_history(z, acts, self.k, self.action_dim)

    def _mean_action(self, i: int) -> torch.Tensor:
        """[A] the mean command sent over the model step that starts at tick ``i``."""
        return step_mean_action(torch.stack(self._a_ticks), i, self.skip)

    def close(self) -> None:
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()
        self.backend = None


def open_engine(cfg: PlannerNodeConfig, checkpoint: Path) -> Tuple[PlanningEngine, List[str], List[str]]:
    """Load, warm up and validate the engine for the node's configure step.

    Returns (engine, the joint names to command, warnings to log). Raises (ConfigError, the loader's errors)
    on anything that must fail the configure transition; the engine is closed then.
    """
    engine = PlanningEngine(cfg, checkpoint)
    try:
        engine.warm_up()
        joint_names = engine.validate_output(cfg.output_mode, cfg.joint_names)
        frame = engine.spec.frame_id
        if cfg.output_mode == "servo_twist" and frame and frame != cfg.twist_frame_id:
            # a twist learnt in one frame and sent in another moves the arm the wrong way
            raise ConfigError(f"twist_frame_id {cfg.twist_frame_id!r} differs from the frame the checkpoint's "
                              f"actions were recorded in ({frame!r}); set twist_frame_id to {frame!r}")
        wanted = list(engine.wm_config.state.names)
        if engine.uses_state and joint_names and joint_names != wanted:
            # one joint-state vector feeds both; supporting two would need two lookups per message
            raise ConfigError(f"the model's state joints {wanted} differ from the commanded joints "
                              f"{joint_names}; this node needs them equal")
    except Exception:
        engine.close()
        raise
    warnings = []
    if cfg.output_mode == "servo_twist" and not engine.spec.frame_id:
        warnings.append(f"the checkpoint does not say which frame its twist actions were recorded in (no headers "
                        f"in the bag); commanding them in twist_frame_id {cfg.twist_frame_id!r}")
    if (engine.energy_kind != "readout" and engine.surprise_scale_source.startswith("checkpoint")
            and cfg.goal_energy_threshold >= engine.surprise_scale):
        warnings.append(
            f"goal_energy_threshold {cfg.goal_energy_threshold:g} is not below this model's one-step latent "
            f"change {engine.surprise_scale:.4g} (metrics['val_one_step_l1']): 'goal reached' may fire a "
            "whole control step away from the goal")
    if engine.budget is not None and not engine.budget.fits:
        warnings.append(f"even the smallest search overruns the planning deadline on this machine: "
                        f"{engine.budget_text()}; commands will be late (lower control_rate_hz or use a faster "
                        "backend)")
    ticks_per_step = engine.spec.dt_s / cfg.control_period_s
    if abs(ticks_per_step - engine.skip) > 0.01 * ticks_per_step:
        warnings.append(
            f"the model's step ({engine.spec.dt_s:.3f} s) is not a whole number of control periods "
            f"({cfg.control_period_s:.3f} s): predictions (and surprise) take it as {engine.skip} period(s)")
    return engine, joint_names, warnings
