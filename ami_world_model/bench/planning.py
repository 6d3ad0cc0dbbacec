"""Planning benchmark: latency vs samples x horizon x iterations, FLOP rate vs this machine's matmul rate,
batched vs a naive per-sample loop, and one MPC step (encode a 64x64 frame + plan) with the defaults.

Every figure is measured in this run on this machine; ratios only compare figures from this run.
The planner's FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` (matmuls, i.e. the
predictor's linear layers and attention products; elementwise work is not counted, so the efficiency
figure is conservative).
"""
from __future__ import annotations

import os
import statistics
import time
from typing import Any, Callable, Dict, List, Tuple

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from ami_world_model.planning import (
    PlannerConfig,
    RecedingHorizonController,
    WorldModelState,
    make_world_model_dynamics,
)
from ami_world_model.planning.cem import cem_update
from ami_world_model.planning.energy import make_energy
from ami_world_model.planning.sampling import project_sequences, sample_sequences


def _default_model() -> Tuple[Any, str]:
    """The default world model (random weights: speed does not depend on them), or a stand-in of similar
    FLOPs when the model package is not importable (half-built tree)."""
    try:
        from ami_world_model.models.config import WorldModelConfig
        from ami_world_model.models.world_model import WorldModel
    except ImportError:
        return _StandIn(), "stand-in MLP (models package not importable)"
    torch.manual_seed(0)
    return WorldModel(WorldModelConfig.tiny()).eval(), "WorldModel(WorldModelConfig.tiny()), random weights"


class _StandIn(nn.Module):
    """~The tiny model's per-sample predictor FLOPs (17 tokens x 2 blocks of width 64) as plain MLPs."""

    def __init__(self, n: int = 16, d: int = 96, a: int = 2) -> None:
        super().__init__()
        from types import SimpleNamespace

        from ami_world_model.config import ActionSpec

        self.config = SimpleNamespace(context_frames=1, action=ActionSpec())
        self.n, self.d = n, d
        self.enc = nn.Linear(3 * 64 * 64 // 16, d)
        self.act = nn.Linear(a, d)
        self.mlp = nn.Sequential(nn.Linear(d, 256), nn.GELU(), nn.Linear(256, 256), nn.GELU(), nn.Linear(256, d))

    def encode(self, images: Tensor) -> Tensor:
        x = images.reshape(images.shape[0], self.n, -1)  # [B, N, 3*64*64/N]
        return self.enc(x)

    def next(self, z: Tensor, actions: Tensor) -> Tensor:
        return z[:, -1] + self.mlp(z[:, -1] + self.act(actions[:, -1])[:, None])


def _percentiles(samples_s: List[float]) -> Tuple[float, float]:
    """(p50, p95) in milliseconds."""
    xs = sorted(samples_s)
    p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
    return statistics.median(xs) * 1e3, p95 * 1e3


def matmul_gflops(shapes: List[Tuple[int, int, int]], seconds: float) -> float:
    """fp32 GFLOP/s of ``[m, k] @ [k, n]`` over ``shapes`` (the predictor's layer sizes), ~``seconds`` each."""
    flops, elapsed = 0.0, 0.0
    for m, k, n in shapes:
        a, b = torch.randn(m, k), torch.randn(k, n)
        for _ in range(3):
            a @ b  # warm up the kernel choice and caches
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            a @ b
            reps += 1
        elapsed += time.perf_counter() - t0
        flops += 2.0 * m * k * n * reps
    return flops / elapsed / 1e9


def _predictor_shapes(model: Any, samples: int) -> List[Tuple[int, int, int]]:
    """Matmul shapes of one batched predictor call over ``samples`` candidates."""
    cfg = getattr(model.config, "predictor", None)
    if cfg is None:  # stand-in
        return [(samples * 16, 96, 256), (samples * 16, 256, 256), (samples * 16, 256, 96)]
    p, hidden = cfg.embed_dim, int(cfg.embed_dim * cfg.mlp_ratio)
    rows = samples * model.config.context_frames * (model.config.num_latents + 1)
    return [(rows, p, 3 * p), (rows, p, p), (rows, p, hidden), (rows, hidden, p)]


def _plan_flops(cfg: PlannerConfig, low: List[float], high: List[float], state: Any, goal: Tensor,
                dyn: Callable) -> int:
    ctrl = RecedingHorizonController(cfg, low, high)
    with FlopCounterMode(display=False) as counter:
        ctrl.plan(state, goal, dyn)
    return int(counter.get_total_flops())


def measure_planner(cfg: PlannerConfig, model: Any, low: List[float], high: List[float], state: Any,
                    goal: Tensor, dyn: Callable, reps: int) -> Dict[str, Any]:
    """Latency of ``plan()`` (warm-started, as in closed loop) and its FLOP rate, each plan followed by a
    measurement of the machine's fp32 rate on the predictor's own matmul sizes: alternating them makes load
    from other processes weigh on both alike, so their ratio (the efficiency) stays meaningful."""
    flops = _plan_flops(cfg, low, high, state, goal, dyn)
    shapes = _predictor_shapes(model, cfg.num_samples)
    ctrl = RecedingHorizonController(cfg, low, high)
    ctrl.plan(state, goal, dyn)  # warm-up (allocator, kernel choice)
    times, rates, mm = [], [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        ctrl.plan(state, goal, dyn)
        dt = time.perf_counter() - t0
        times.append(dt)
        rates.append(flops / 1e9 / dt)
        mm.append(matmul_gflops(shapes, 0.01))
    p50, p95 = _percentiles(times)
    rate, mm_rate = statistics.median(rates), statistics.median(mm)
    return {"samples": cfg.num_samples, "horizon": cfg.horizon_steps, "iterations": cfg.iterations,
            "p50_ms": round(p50, 2), "p95_ms": round(p95, 2), "gflop": round(flops / 1e9, 3),
            "gflops": round(rate, 1), "matmul_gflops": round(mm_rate, 1),
            "efficiency": round(rate / mm_rate, 3)}


def naive_plan(cfg: PlannerConfig, low: Tensor, high: Tensor, state: Any, goal: Tensor, dyn: Callable) -> Tensor:
    """The controller's cold-start CEM (no rate limit or penalty) written as a per-sample Python loop (batch 1
    per rollout): the baseline batching is measured against. Same seed -> same plan as the controller."""
    gen = torch.Generator().manual_seed(cfg.seed)
    energy = make_energy(cfg.energy)
    scale, prev = high - low, torch.zeros_like(low)
    mean = ((low + high) / 2).expand(cfg.horizon_steps, -1).clone()
    std = (cfg.init_std * scale).expand(cfg.horizon_steps, -1).clone()
    best, best_cost = mean, float("inf")
    for it in range(cfg.iterations):
        samples = sample_sequences(mean, std, cfg.num_samples, gen)
        if it == 0:
            samples[1] = 0.0  # "do nothing", as the controller scores it
        samples = project_sequences(samples, low, high, prev, None)
        costs = []
        for s in range(cfg.num_samples):  # the loop batching removes
            st = state
            for t in range(cfg.horizon_steps):
                st = dyn(st, samples[s, t][None])
            costs.append(energy(st, goal)[0])
        c = torch.stack(costs)
        i = int(torch.argmin(c))
        if float(c[i]) < best_cost:
            best_cost, best = float(c[i]), samples[i]
        mean, std = cem_update(samples, c, mean, std, cfg.top_k, cfg.momentum, cfg.min_std * scale)
    return best


@torch.inference_mode()
def run(quick: bool) -> Dict[str, Any]:
    """Figures for ``ami-wm bench`` (see the module docstring)."""
    load_start = os.getloadavg()[0]
    model, model_name = _default_model()
    spec = model.config.action
    k = model.config.context_frames
    dyn = make_world_model_dynamics(model.next, k)
    low, high = list(spec.low), list(spec.high)
    frame = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    goal = model.encode(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2)))[0]
    state = WorldModelState.from_history(model.encode(frame), None, k, action_dim=spec.dim)
    default = PlannerConfig()
    reps = 5 if quick else 20

    sweep = []
    grid = [(s, h, i) for s in (64, 128, 256) for h in (3, 5) for i in (2, 4)]
    if quick:
        grid = [(64, 3, 2), (256, 5, 4)]
    for s, h, i in grid:
        cfg = PlannerConfig(num_samples=s, horizon_steps=h, iterations=i, top_k=min(default.top_k, s))
        sweep.append(measure_planner(cfg, model, low, high, state, goal, dyn, reps))
    # The default config (its own row): FLOP rate vs matmul rate, and batched vs the naive loop.
    row = measure_planner(default, model, low, high, state, goal, dyn, reps * 2)
    sweep.append(dict(row, default=True))
    b50, flops = row["p50_ms"], row["gflop"] * 1e9
    # Naive loop vs batched on the same cold-start problem, in alternating pairs (robust to outside load).
    lo_t, hi_t = torch.tensor(low), torch.tensor(high)
    cold = RecedingHorizonController(default, low, high)
    naive, ratios = [], []
    for _ in range(1 if quick else 3):
        t0 = time.perf_counter()
        naive_plan(default, lo_t, hi_t, state, goal, dyn)
        t1 = time.perf_counter()
        cold.reset()
        cold.plan(state, goal, dyn)
        t2 = time.perf_counter()
        naive.append(t1 - t0)
        ratios.append((t1 - t0) / (t2 - t1))
    n50 = statistics.median(naive) * 1e3

    # One MPC step as the node runs it: encode the newest frame, build the state, plan (warm-started).
    ctrl = RecedingHorizonController(default, low, high)
    steps = []
    for i in range(reps * 2 + 3):
        t0 = time.perf_counter()
        z = model.encode(frame)  # [1, N, D]
        ctrl.plan(WorldModelState.from_history(z, None, k, action_dim=spec.dim), goal, dyn)
        if i >= 3:  # skip warm-up ticks
            steps.append(time.perf_counter() - t0)
    m50, m95 = _percentiles(steps)

    return {
        "mpc_step_p50_ms": round(m50, 2),
        "mpc_step_p95_ms": round(m95, 2),
        "planner_gflops": row["gflops"],
        "matmul_gflops": row["matmul_gflops"],
        "planner_efficiency": row["efficiency"],
        "naive_over_batched": round(statistics.median(ratios), 1),
        "planner_p50_ms": round(b50, 2),
        "naive_planner_p50_ms": round(n50, 1),
        "planner_gflop_per_plan": round(flops / 1e9, 3),
        "planner_default_config": (
            f"{default.method} S={default.num_samples} H={default.horizon_steps} I={default.iterations} "
            f"top_k={default.top_k}"
        ),
        "planner_model": model_name,
        # Other processes on this machine slow absolute latencies (not the ratios): say how busy it was.
        "planner_loadavg_1min": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "planner_sweep": sweep,
    }
