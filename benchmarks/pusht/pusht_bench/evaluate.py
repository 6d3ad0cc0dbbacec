"""The evaluation protocol (DINO-WM / LeWM on PushT, as run in stable-worldmodel's harness).

Per episode: a held-out trajectory and a start index t0; the env is reset to the trajectory's state at t0 and
the goal is its state ``offset`` env steps later (25, also 50); the goal image is the env's rendering of that
state. Budget: 50 env steps. The planner plans ``horizon`` = 5 blocks of ``frameskip`` = 5 env steps (one
held 2-D action per block), the whole plan is executed, then it replans from the new frame
(a cold start: with the whole plan executed, the harness's warm start has nothing left to keep).
Success: the env's ``eval_state`` (agent + block position within 20 px, block angle within pi/9), latched
over the episode. Every planner below goes through the project's RecedingHorizonController (CEM).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from ami_world_model.planning.config import PlannerConfig
from ami_world_model.planning.controller import RecedingHorizonController
from ami_world_model.planning.dynamics import PoseState

BUDGET_STEPS = 50
FRAMESKIP = 5
HORIZON_BLOCKS = 5
# The anchors' CEM (DINO-WM / LeWM): 300 samples, 30 iterations, top 30.
PROTOCOL_CEM = dict(num_samples=300, iterations=30, top_k=30)


def protocol_planner(num_samples: int, iterations: int, top_k: int, seed: int = 0) -> PlannerConfig:
    """The controller's CEM with the protocol's horizon; the rest are the project's PlannerConfig defaults.

    Each plan starts cold (``warm_start=False``): the harness warm-starts from the part of the last plan that
    was not executed (``actions[:, receding_horizon:]``) and pads with fresh samples, and with the whole
    5-block plan executed nothing is left. The controller's own warm start shifts by one step (one node
    tick), which would start the next plan from blocks already executed.
    """
    return PlannerConfig(method="cem", num_samples=num_samples, iterations=iterations, top_k=top_k,
                         horizon_steps=HORIZON_BLOCKS, warm_start=False, seed=seed)


def node_budget() -> Dict[str, int]:
    """Our node's default budget, read from PlannerConfig() (samples, iterations, top_k)."""
    d = PlannerConfig()
    return dict(num_samples=d.num_samples, iterations=d.iterations, top_k=d.top_k)


def wilson(successes: int, n: int, z: float = 1.96) -> List[float]:
    """95 % Wilson score interval for a binomial proportion."""
    if n == 0:
        return [0.0, 1.0]
    p = successes / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return [max(0.0, centre - half), min(1.0, centre + half)]


def episodes_from_heldout(held: Dict[str, np.ndarray], n: int, offset: int, seed: int) -> List[Dict[str, Any]]:
    """``n`` (start state, goal state) pairs: trajectory i % E, start t0 uniform in [0, T - offset]."""
    states = held["states"]  # [E, T+1, 7]
    e_count, t_len = states.shape[0], states.shape[1] - 1
    if t_len < offset:
        raise ValueError(f"held-out trajectories have {t_len} steps; goals {offset} steps ahead need more")
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        e = i % e_count
        t0 = int(rng.integers(0, t_len - offset + 1))
        out.append({"traj": e, "t0": t0, "start": states[e, t0], "goal": states[e, t0 + offset]})
    return out


class ModelPlanner:
    """Plans with a world model's adapter (``encode``, ``state0``, ``dynamics``, optional ``energy``)."""

    def __init__(self, adapter: Any, cfg: PlannerConfig, low: Sequence[float], high: Sequence[float]) -> None:
        self.adapter, self.cfg = adapter, cfg
        self.ctrl = RecedingHorizonController(cfg, low, high)
        self.goal: Optional[torch.Tensor] = None

    def begin(self, goal_frame: np.ndarray, goal_state: np.ndarray) -> None:
        self.ctrl.reset()
        self.goal = self.adapter.encode(goal_frame)

    @torch.no_grad()
    def plan(self, frame: np.ndarray, env: Any) -> np.ndarray:
        state0 = self.adapter.state0(self.adapter.encode(frame), env.unwrapped._get_obs())
        res = self.ctrl.plan(state0, self.goal, self.adapter.dynamics, energy=getattr(self.adapter, "energy", None))
        return res.actions.cpu().numpy()


class PosePlanner:
    """Plans in read-out space with ours' pose-dynamics head: the positions our read-out sees in the current
    frame (and the robot's joint state) are stepped by the head; the energy is the read-out distance to the
    positions seen in the goal image. No simulator state is used.

    ``true_points(env) -> [P]`` (the head's units) replaces what the read-out sees, in the current state and the
    goal's, by the simulator's own points: a diagnostic bound (how far ours' head plans with perfect eyes), never
    ours.

    ``joint_position(obs) -> [2]`` (the head's units): the agent's position as the robot's joint state reports it
    (``/joint_states`` position) replaces the read-out's agent point (the first) in the current state, as a
    robot knows where its own tool is; with ``goal_joint_position`` also in the goal's, from the goal state's
    joints (DINO-WM's PushT goal: the image and the agent's proprioception). The block is still read from the
    images."""

    def __init__(self, adapter: Any, cfg: PlannerConfig, low: Sequence[float], high: Sequence[float],
                 true_points: Optional[Callable[[Any], np.ndarray]] = None,
                 make_env: Optional[Callable[[], Any]] = None,
                 joint_position: Optional[Callable[[np.ndarray], np.ndarray]] = None,
                 goal_joint_position: bool = False) -> None:
        if goal_joint_position and joint_position is None:
            raise ValueError("PosePlanner: goal_joint_position needs joint_position")
        self.adapter, self.cfg, self.true_points = adapter, cfg, true_points
        self.joint_position, self.goal_joint_position = joint_position, goal_joint_position
        self.ctrl = RecedingHorizonController(cfg, low, high)
        self.goal: Optional[torch.Tensor] = None
        self.sim = None
        if true_points is not None:
            if make_env is None:
                raise ValueError("PosePlanner with true_points needs make_env (to read the goal state's points)")
            self.sim = make_env().unwrapped
            self.sim.reset(seed=0)

    def _points(self, base: Any) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.true_points(base), dtype=np.float32)).reshape(-1)

    def begin(self, goal_frame: np.ndarray, goal_state: np.ndarray) -> None:
        self.ctrl.reset()
        if self.sim is not None:
            self.sim._set_state(np.asarray(goal_state, dtype=np.float64))
            self.goal = self._points(self.sim)
        else:
            self.goal = self._with_joints(self.adapter.positions(self.adapter.encode(goal_frame)), goal_state,
                                          self.goal_joint_position)

    def _with_joints(self, positions: torch.Tensor, obs: np.ndarray, use: bool) -> torch.Tensor:
        """``[P]`` read-out positions with the agent's (the first point) from the joint state when ``use``."""
        if not use or self.joint_position is None:
            return positions
        out = positions.clone()
        out[:2] = torch.as_tensor(np.asarray(self.joint_position(obs), dtype=np.float32))
        return out

    @torch.no_grad()
    def plan(self, frame: np.ndarray, env: Any) -> np.ndarray:
        obs = env.unwrapped._get_obs()
        if self.sim is not None:  # the bound: the simulator's points, so the frame is not even encoded
            state0 = PoseState(self._points(env.unwrapped)[None], self.adapter.proprio_state(obs))
        else:
            state0 = self.adapter.pose_state0(self.adapter.encode(frame), obs)
            state0 = PoseState(self._with_joints(state0.positions[0], obs, True)[None], state0.state)
        res = self.ctrl.plan(state0, self.goal, self.adapter.pose_dynamics, energy=self.adapter.pose_energy)
        return res.actions.cpu().numpy()


class OraclePlanner:
    """The same CEM over the true simulator: a second PushT env, reset to the current state per candidate.

    Energy: the success test's two terms, each in units of its tolerance:
    ||agent+block position error|| / 20 px + block angle error / (pi/9).
    """

    def __init__(self, make_env: Callable[[], Any], cfg: PlannerConfig, low: Sequence[float],
                 high: Sequence[float]) -> None:
        self.sim = make_env().unwrapped
        self.sim.reset(seed=0)
        self.ctrl = RecedingHorizonController(cfg, low, high)
        self.goal_state: Optional[np.ndarray] = None

    def begin(self, goal_frame: np.ndarray, goal_state: np.ndarray) -> None:
        self.ctrl.reset()
        self.goal_state = np.asarray(goal_state, dtype=np.float64)

    def dynamics(self, states: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        out = np.empty(states.shape, dtype=np.float64)
        s_np, a_np = states.numpy().astype(np.float64), a.numpy().astype(np.float32)
        for i in range(s_np.shape[0]):
            self.sim._set_state(s_np[i])
            for _ in range(FRAMESKIP):
                self.sim.step(a_np[i])
            out[i] = self.sim._get_obs()
        return torch.from_numpy(out)

    def energy(self, states: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        pos = torch.linalg.norm(states[:, :4] - goal[:4], dim=1) / 20.0
        ang = torch.abs(states[:, 4] - goal[4]) % (2 * math.pi)
        ang = torch.minimum(ang, 2 * math.pi - ang) / (math.pi / 9)
        return (pos + ang).float()

    def plan(self, frame: np.ndarray, env: Any) -> np.ndarray:
        state0 = torch.from_numpy(env.unwrapped._get_obs())[None]  # [1, 7]
        goal = torch.from_numpy(self.goal_state)
        return self.ctrl.plan(state0, goal, self.dynamics, energy=self.energy).actions.numpy()


class RandomPlanner:
    """Uniform random held actions within the same bounds."""

    def __init__(self, low: Sequence[float], high: Sequence[float], seed: int = 0) -> None:
        self.low, self.high = np.asarray(low), np.asarray(high)
        self.rng = np.random.default_rng(seed)

    def begin(self, goal_frame: np.ndarray, goal_state: np.ndarray) -> None:
        pass

    def plan(self, frame: np.ndarray, env: Any) -> np.ndarray:
        return self.rng.uniform(self.low, self.high, size=(HORIZON_BLOCKS, self.low.size)).astype(np.float32)


def run_episode(env: Any, planner: Any, ep: Dict[str, Any], seed: int) -> Dict[str, Any]:
    """One protocol episode; returns success (latched eval_state), steps, planning time, final distance."""
    _, info = env.reset(seed=seed, options={"state": ep["start"], "goal_state": ep["goal"]})
    base = env.unwrapped
    planner.begin(info["goal"], ep["goal"])
    steps, success, plan_s, calls = 0, False, 0.0, 0
    while steps < BUDGET_STEPS and not success:
        frame = env.render()
        t = time.perf_counter()
        actions = planner.plan(frame, env)  # [H, 2] one held action per block
        plan_s += time.perf_counter() - t
        calls += 1
        for a in actions:
            for _ in range(FRAMESKIP):
                if steps >= BUDGET_STEPS or success:
                    break
                env.step(np.asarray(a, dtype=np.float32))
                steps += 1
                success = success or bool(base.eval_state(base.goal_state, base._get_obs())[0])
    s = base._get_obs()
    return {"success": success, "steps": steps, "plan_s": plan_s, "plan_calls": calls,
            "final_pos_err_px": float(np.linalg.norm(s[:4] - ep["goal"][:4]))}


def evaluate(env: Any, planner: Any, episodes: List[Dict[str, Any]], name: str, seed: int = 0,
             max_seconds: Optional[float] = None) -> Dict[str, Any]:
    """Run the episodes in order; with ``max_seconds``, start no episode after that much time (the result
    then covers the first ``episodes`` only, and says so with ``capped``)."""
    rows = []
    t0 = time.perf_counter()
    for i, ep in enumerate(episodes):
        if max_seconds is not None and rows and time.perf_counter() - t0 > max_seconds:
            break
        r = run_episode(env, planner, ep, seed + i)
        rows.append(r)
        print(f"[eval {name}] episode {i + 1}/{len(episodes)} success={r['success']} steps={r['steps']} "
              f"plan_s={r['plan_s']:.1f}", flush=True)
    n, k = len(rows), sum(r["success"] for r in rows)
    plan_s = sum(r["plan_s"] for r in rows)
    return {
        "episodes": n,
        "capped": n < len(episodes),
        "successes": k,
        "success": k / n if n else 0.0,
        "wilson95": wilson(k, n),
        "plan_ms_per_call": 1e3 * plan_s / max(sum(r["plan_calls"] for r in rows), 1),
        "plan_ms_per_env_step": 1e3 * plan_s / max(sum(r["steps"] for r in rows), 1),
        "mean_final_pos_err_px": float(np.mean([r["final_pos_err_px"] for r in rows])) if rows else None,
        "per_episode": [{"traj": ep["traj"], "t0": ep["t0"], **r} for ep, r in zip(episodes, rows)],
        "success_ids": [i for i, r in enumerate(rows) if r["success"]],
    }


def _ranks(x: np.ndarray) -> np.ndarray:
    r = np.empty(len(x))
    r[np.argsort(x, kind="stable")] = np.arange(len(x))
    return r


def true_distance(states: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """The success test's terms in units of their tolerances: position error / 20 px + angle error / (pi/9)."""
    pos = np.linalg.norm(states[:, :4] - goal[:4], axis=1) / 20.0
    ang = np.abs(states[:, 4] - goal[4]) % (2 * np.pi)
    return pos + np.minimum(ang, 2 * np.pi - ang) / (np.pi / 9)


@torch.no_grad()
def energy_quality(adapter: Any, held: Dict[str, np.ndarray], offset: int) -> Dict[str, Any]:
    """How well a model's planning energy tracks the true distance to the goal along held-out trajectories.

    For each trajectory segment [t0, t0 + offset] with its last frame as the goal: the Spearman rank
    correlation between the energy of each frame to the goal and the true distance, and the fraction of
    steps where the energy falls when the true distance falls (0.5 = chance).
    """
    frames, states = held["frames"], held["states"]
    rhos, agree, total = [], 0, 0
    for e in range(frames.shape[0]):
        for t0 in range(0, frames.shape[1] - offset, offset):
            goal = adapter.encode(frames[e, t0 + offset])
            z = [adapter.encode(frames[e, t]) for t in range(t0, t0 + offset + 1)]
            en = np.array([float(adapter.frame_energy(zi, goal)) for zi in z])
            d = true_distance(states[e, t0:t0 + offset + 1], states[e, t0 + offset])
            if np.ptp(d) > 0 and np.ptp(en) > 0:
                rhos.append(float(np.corrcoef(_ranks(en), _ranks(d))[0, 1]))
            dd, de = np.diff(d), np.diff(en)
            falls = dd < -1e-3
            agree += int(np.sum(de[falls] < 0))
            total += int(np.sum(falls))
    return {"spearman_mean": float(np.mean(rhos)) if rhos else None, "segments": len(rhos),
            "energy_falls_when_distance_falls": agree / total if total else None}


@torch.no_grad()
def readout_error_px(adapter: Any, held: Dict[str, np.ndarray], pose_scale: float) -> Dict[str, Any]:
    """Mean planar error (env pixels) of a model's read-out per pose point on every held-out frame, and the
    block angle error (degrees) implied by the block and tip read-outs."""
    frames, poses = held["frames"], held["poses"]  # [E, T+1, H, W, 3], [E, T+1, 3, 2] px
    pred = np.stack([adapter.readout_px(adapter.encode(f), pose_scale).numpy() for f in frames.reshape(
        -1, *frames.shape[2:])]).reshape(poses.shape)
    err = np.linalg.norm(pred - poses, axis=-1).mean(axis=(0, 1))  # [3]
    stem_pred, stem_true = pred[..., 2, :] - pred[..., 1, :], poses[..., 2, :] - poses[..., 1, :]
    ang = np.arctan2(stem_pred[..., 1], stem_pred[..., 0]) - np.arctan2(stem_true[..., 1], stem_true[..., 0])
    ang = np.abs((ang + np.pi) % (2 * np.pi) - np.pi)
    return {"agent_px": float(err[0]), "block_px": float(err[1]), "block_tip_px": float(err[2]),
            "block_angle_deg": float(np.degrees(ang).mean()), "frames": int(pred.shape[0] * pred.shape[1])}


def planner_dict(cfg: PlannerConfig) -> Dict[str, Any]:
    return {k: v for k, v in asdict(cfg).items() if k in (
        "method", "num_samples", "iterations", "top_k", "horizon_steps", "warm_start", "init_std", "warm_std",
        "min_std", "momentum", "energy", "seed")}


@torch.no_grad()
def predicted_readout_error_px(adapter: Any, env: Any, episodes: List[Dict[str, Any]], plans: Callable[..., Any],
                               pose_points: Callable[[Any], np.ndarray], pose_scale: float) -> Dict[str, Any]:
    """Is the predictor what is short? From each episode's start, a 5-block plan (``plans(frame, env, info)``
    -> [H, 2] held actions; ``info`` is the reset's) is rolled out by the model and executed in the env; per
    block, the mean planar error (env pixels) of the read-out of the predicted latent against the env's true
    points, beside the read-out of the start frame against the same points (``copy``: a model that predicts
    no motion).
    """
    pred_err, copy_err = [], []
    for ep in episodes:
        _, info = env.reset(seed=0, options={"state": ep["start"], "goal_state": ep["goal"]})
        frame = env.render()
        actions = np.asarray(plans(frame, env, info), dtype=np.float32)
        z0 = adapter.encode(frame)
        start = adapter.readout_px(z0, pose_scale).numpy().reshape(-1, 2)
        state, pred, true = adapter.state0(z0, env.unwrapped._get_obs()), [], []
        for a in actions:
            state = adapter.dynamics(state, torch.from_numpy(a)[None])
            pred.append(adapter.readout_px(state.latest[0], pose_scale).numpy().reshape(-1, 2))
            for _ in range(FRAMESKIP):
                env.step(a)
            true.append(pose_points(env.unwrapped))
        true_a = np.stack(true)
        pred_err.append(np.linalg.norm(np.stack(pred) - true_a, axis=-1))  # [H, points]
        copy_err.append(np.linalg.norm(start[None] - true_a, axis=-1))
    pe, ce = np.mean(pred_err, axis=0), np.mean(copy_err, axis=0)  # [H, points]
    return {"episodes": len(episodes), "points": ["agent", "block", "block_tip"],
            "predicted_px_per_block": np.round(pe, 1).tolist(), "copy_px_per_block": np.round(ce, 1).tolist()}
