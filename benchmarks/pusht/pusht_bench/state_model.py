"""A diagnostic bound: dynamics learned on the TRUE state, from the same recorded episodes as ours.

Ours has to see (encoder + read-out) and predict (latent predictor). This model skips the seeing: its input is
the simulator's own poses (agent, block origin, block tip; the bag's pose topics) and the agent's velocity (the
bag's /joint_states), and an MLP learns the change over one block of ``frameskip`` env steps from the block's
mean command, exactly the unit ours predicts. It plans with the same CEM and budgets, on an energy in the success
test's own units (as the oracle's). So, on the same data:

- oracle (true dynamics)  - state model  = what learning dynamics from these episodes loses;
- state model             - ours         = what seeing (perception) and predicting in latents lose.

Perfect perception is not something a camera gives, so this is a bound, not a competitor: it is a row of the
table, like the oracle, and never called "ours".

``PerceivedStatePlanner`` is the same model started from what OUR encoder and read-out head see in the current
frame and the goal image (the agent's velocity from the env, as a robot's joint states give it): the gap to the
true-state row is what our perception costs, the gap from it down to ours is what predicting in latents costs.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np
import torch
from pusht_bench import collect
from torch import Tensor, nn

from ami_world_model.planning.config import PlannerConfig
from ami_world_model.planning.controller import RecedingHorizonController

# Positions and displacements are scaled by this (env px) inside the MLP, velocities by VEL_SCALE (px/s).
POS_SCALE_PX, VEL_SCALE = 50.0, 500.0


@dataclass
class StateModelConfig:
    hidden: int = 256
    depth: int = 3  # hidden layers
    steps: int = 6000
    batch_size: int = 256
    lr: float = 1e-3
    val_fraction: float = 0.15
    seed: int = 0


class StateDynamics(nn.Module):
    """[poses 6 px, agent velocity 2 px/s] + block action [2] -> the same 8 numbers one block later."""

    def __init__(self, cfg: StateModelConfig, x_mean: Sequence[float], x_std: Sequence[float]) -> None:
        super().__init__()
        layers: List[nn.Module] = []
        width = 10
        for _ in range(cfg.depth):
            layers += [nn.Linear(width, cfg.hidden), nn.GELU()]
            width = cfg.hidden
        layers.append(nn.Linear(width, 8))
        self.net = nn.Sequential(*layers)
        self.register_buffer("x_mean", torch.tensor(x_mean, dtype=torch.float32))
        self.register_buffer("x_std", torch.tensor(x_std, dtype=torch.float32))
        self.register_buffer("out_scale", torch.tensor([POS_SCALE_PX] * 6 + [VEL_SCALE] * 2))

    def forward(self, s: Tensor, a: Tensor) -> Tensor:
        x = (torch.cat([s, a.to(s.dtype)], dim=1) - self.x_mean) / self.x_std
        return s + self.net(x) * self.out_scale


def load_bag(bag: Path, resolution: int) -> Any:
    """The bag's episodes with targets = the three poses and states = the agent's velocity (x POSE_SCALE)."""
    from ami_world_model.data.bags import BagSpec, load_episodes

    spec = BagSpec(image_size=[resolution, resolution], frame_skip=1, pose_topics=list(collect.POSE_TOPICS),
                   state_topic=collect.AGENT_STATE_TOPIC, state_joints=list(collect.AGENT_JOINTS),
                   state_field="velocity")
    return load_episodes(bag, spec)


def transitions(episodes: Sequence[Any], frameskip: int, pose_scale: float) -> Tuple[np.ndarray, ...]:
    """From ``load_bag`` episodes: X [M, 10] (state then the block's mean command), Y [M, 8] (the state
    ``frameskip`` records later), and the episode index of each row (for the validation split)."""
    xs, ys, ep = [], [], []
    for i, e in enumerate(episodes):
        if e.targets is None or e.states is None:
            raise ValueError("the state model needs the bag's pose topics and its /joint_states velocity")
        s = np.concatenate([e.targets, e.states], axis=1) / pose_scale  # [T, 8] px, px/s
        a = e.actions
        for t in range(len(s) - frameskip):
            xs.append(np.concatenate([s[t], a[t:t + frameskip].mean(0)]))
            ys.append(s[t + frameskip])
            ep.append(i)
    return np.asarray(xs, np.float32), np.asarray(ys, np.float32), np.asarray(ep)


def train(episodes: Sequence[Any], frameskip: int, pose_scale: float, cfg: StateModelConfig = StateModelConfig()
          ) -> Tuple[StateDynamics, Dict[str, Any]]:
    """Fit on all but ``val_fraction`` of the episodes; report the held-out error per point vs no motion."""
    x, y, ep = transitions(episodes, frameskip, pose_scale)
    if len(x) == 0:
        raise ValueError(f"no transitions of {frameskip} records in {len(episodes)} episodes")
    rng = np.random.default_rng(cfg.seed)
    n_val = int(round(cfg.val_fraction * len(episodes))) if len(episodes) > 1 else 0
    val_eps = set(rng.permutation(len(episodes))[:n_val].tolist())
    val = np.array([i in val_eps for i in ep])
    tr = ~val if (~val).any() else np.ones_like(val)
    torch.manual_seed(cfg.seed)
    model = StateDynamics(cfg, x[tr].mean(0), x[tr].std(0) + 1e-6)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    idx = np.flatnonzero(tr)
    gen = torch.Generator().manual_seed(cfg.seed)
    t0 = time.perf_counter()
    for step in range(cfg.steps):
        lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / max(cfg.steps, 1)))
        for g in opt.param_groups:
            g["lr"] = lr
        b = torch.from_numpy(idx)[torch.randint(len(idx), (cfg.batch_size,), generator=gen)]
        pred = model(xt[b, :8], xt[b, 8:])
        loss = nn.functional.smooth_l1_loss(pred / model.out_scale, yt[b] / model.out_scale, beta=0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    train_s = time.perf_counter() - t0
    model.eval()
    check = val if val.any() else tr
    with torch.no_grad():
        pred = model(xt[check, :8], xt[check, 8:]).numpy()
    err = np.linalg.norm((pred[:, :6] - y[check, :6]).reshape(-1, 3, 2), axis=2).mean(0)
    still = np.linalg.norm((x[check, :6] - y[check, :6]).reshape(-1, 3, 2), axis=2).mean(0)
    names = ("agent", "block", "block_tip")
    metrics = {
        "config": asdict(cfg),
        "params": sum(p.numel() for p in model.parameters()),
        "train_s": train_s,
        "transitions": int(tr.sum()),
        "val_transitions": int(val.sum()),
        "val_error_px": {n: float(v) for n, v in zip(names, err)},
        "val_no_motion_px": {n: float(v) for n, v in zip(names, still)},
    }
    return model, metrics


def block_angle(points: Tensor) -> Tensor:
    """[..., >= 6] (agent, block origin, tip) -> the block's angle (rad) from the origin-to-tip direction."""
    return torch.atan2(points[..., 5] - points[..., 3], points[..., 4] - points[..., 2])


def success_energy(s: Tensor, goal: Tensor) -> Tensor:
    """The oracle's energy on points: ||agent, block position error|| / 20 px + block angle error / (pi/9)."""
    pos = torch.linalg.norm(s[:, :4] - goal[:4], dim=1) / 20.0
    ang = torch.remainder(block_angle(s) - block_angle(goal) + math.pi, 2 * math.pi) - math.pi
    return pos + ang.abs() / (math.pi / 9)


class StatePlanner:
    """The same CEM over the learned state dynamics, started from the env's true state."""

    def __init__(self, model: StateDynamics, cfg: PlannerConfig, low: Sequence[float], high: Sequence[float],
                 pose_points: Any, make_env: Callable[[], Any]) -> None:
        self.model, self.pose_points = model, pose_points
        self.ctrl = RecedingHorizonController(cfg, low, high)
        self.sim = make_env().unwrapped  # only to read the goal state's points
        self.sim.reset(seed=0)
        self.goal: Tensor = torch.zeros(8)

    def true_state(self, base: Any) -> Tensor:
        """The env's poses (px) and agent velocity (px/s): what the bag records, before POSE_SCALE."""
        obs = base._get_obs()
        return torch.from_numpy(np.concatenate([self.pose_points(base).reshape(-1), obs[5:7]])).float()

    def begin(self, goal_frame: np.ndarray, goal_state: np.ndarray) -> None:
        self.ctrl.reset()
        self.sim._set_state(np.asarray(goal_state, dtype=np.float64))
        self.goal = self.true_state(self.sim)

    @torch.no_grad()
    def plan(self, frame: np.ndarray, env: Any) -> np.ndarray:
        s0 = self.true_state(env.unwrapped)[None]
        return self.ctrl.plan(s0, self.goal, self.model, energy=success_energy).actions.numpy()


class PerceivedStatePlanner:
    """As ``StatePlanner``, but the start and goal points are ``perceive(frame) -> [6]`` env px (our read-out of
    the encoded frame); the velocity is still the env's (proprioception), the goal's is not used by the energy."""

    def __init__(self, model: StateDynamics, cfg: PlannerConfig, low: Sequence[float], high: Sequence[float],
                 perceive: Callable[[np.ndarray], Tensor]) -> None:
        self.model, self.perceive = model, perceive
        self.ctrl = RecedingHorizonController(cfg, low, high)
        self.goal = torch.zeros(8)

    def begin(self, goal_frame: np.ndarray, goal_state: np.ndarray) -> None:
        self.ctrl.reset()
        self.goal = torch.cat([self.perceive(goal_frame).float(), torch.zeros(2)])

    @torch.no_grad()
    def plan(self, frame: np.ndarray, env: Any) -> np.ndarray:
        velocity = torch.from_numpy(env.unwrapped._get_obs()[5:7]).float()
        s0 = torch.cat([self.perceive(frame).float(), velocity])[None]
        return self.ctrl.plan(s0, self.goal, self.model, energy=success_energy).actions.numpy()


def save(model: StateDynamics, path: Path) -> None:
    torch.save(model.state_dict(), path)  # tensors only, for diagnostics
