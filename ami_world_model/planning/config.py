"""PlannerConfig: every knob of the latent-space planner, with defaults sized for the tiny CPU model.

Build it from YAML / ROS parameters with ``config.from_dict(PlannerConfig, d)`` (unknown keys are errors).
Fractions (``init_std``, ``min_std``, ``grad_refine_lr``) are relative to the action range ``high - low`` of
each dimension, so one config fits any action spec; ``max_step_delta`` is in physical units because it is a
safety limit the user reasons about (m/s per control period for twist actions).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List

from ami_world_model.config import ConfigError

METHODS = ("cem", "mppi")
ENERGIES = ("l1", "l2")


@dataclass
class PlannerConfig:
    """Sampling-based MPC over action sequences in the world model's latent space."""

    method: str = "cem"  # "cem" (top-k elites) or "mppi" (temperature-weighted average of all samples)
    num_samples: int = 64  # S, candidate sequences per iteration (one batched rollout)
    horizon_steps: int = 3  # H, actions per sequence (each held for the action spec's dt_s)
    iterations: int = 4  # max optimiser iterations per plan() (fewer when a deadline stops it early)
    top_k: int = 16  # CEM elites (MPPI ignores it)
    momentum: float = 0.1  # weight of the previous mean/std when smoothing the update (0 = no smoothing)
    mppi_temperature: float = 0.1  # MPPI lambda, in units of the median-to-best cost gap (scale-free)
    init_std: float = 0.5  # initial sampling std, fraction of the action range (cold start)
    warm_std: float = 0.1  # initial std when warm-starting (the shifted plan is already close: search near it)
    min_std: float = 0.02  # std floor, fraction of the action range (keeps exploring, avoids collapse)
    energy: str = "l1"  # distance to the goal latent: "l1" (V-JEPA 2-AC) or "l2" (mean squared)
    sum_intermediate: bool = False  # sum the energy over all H predicted steps instead of the last only
    rate_penalty: float = 0.0  # weight of mean squared (normalised) action change, incl. vs the last command
    max_step_delta: List[float] = field(default_factory=list)  # hard |a_t - a_{t-1}| per dim (physical
    # units, one value for all dims or one per dim); empty = no rate limit (the bounds still hold)
    warm_start: bool = True  # start from the previous plan shifted one step (receding horizon)
    grad_refine_steps: int = 0  # Adam steps on the best sequence after sampling (needs differentiable
    # dynamics; 0 = off)
    grad_refine_lr: float = 0.05  # Adam learning rate, fraction of the action range
    seed: int = 0  # torch.Generator seed: same seed + same inputs -> same plan

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"PlannerConfig.method must be one of {METHODS}, got {self.method!r}")
        if self.energy not in ENERGIES:
            raise ConfigError(f"PlannerConfig.energy must be one of {ENERGIES}, got {self.energy!r}")
        for name in ("num_samples", "horizon_steps", "iterations", "top_k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"PlannerConfig.{name} must be a positive integer, got {value!r}")
        if self.num_samples < 2:
            # sample 0 is the current mean and sample 1 the "do nothing" sequence on the first iteration
            raise ConfigError(f"PlannerConfig.num_samples must be >= 2, got {self.num_samples}")
        if self.method == "cem" and self.top_k > self.num_samples:
            raise ConfigError(
                f"PlannerConfig.top_k ({self.top_k}) must not exceed num_samples ({self.num_samples}); "
                "lower top_k or raise num_samples"
            )
        if not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"PlannerConfig.momentum must be in [0, 1), got {self.momentum}")
        _positive(self.mppi_temperature, "mppi_temperature")
        _positive(self.init_std, "init_std")
        _positive(self.warm_std, "warm_std")
        if not 0.0 <= self.min_std <= min(self.init_std, self.warm_std):
            raise ConfigError(
                f"PlannerConfig.min_std ({self.min_std}) must be in [0, min(init_std, warm_std)]"
            )
        if not (math.isfinite(self.rate_penalty) and self.rate_penalty >= 0.0):
            raise ConfigError(f"PlannerConfig.rate_penalty must be >= 0, got {self.rate_penalty}")
        self.max_step_delta = [float(x) for x in self.max_step_delta]
        if any(not (math.isfinite(x) and x > 0.0) for x in self.max_step_delta):
            raise ConfigError(
                f"PlannerConfig.max_step_delta entries must be positive and finite, got {self.max_step_delta}"
                " (use an empty list for no rate limit)"
            )
        if isinstance(self.grad_refine_steps, bool) or self.grad_refine_steps < 0:
            raise ConfigError(f"PlannerConfig.grad_refine_steps must be >= 0, got {self.grad_refine_steps}")
        _positive(self.grad_refine_lr, "grad_refine_lr")

    def step_delta(self, action_dim: int) -> List[float]:
        """``max_step_delta`` expanded to ``action_dim`` entries (empty when there is no rate limit)."""
        d = self.max_step_delta
        if len(d) in (0, action_dim):
            return list(d)
        if len(d) == 1:
            return d * action_dim
        raise ConfigError(
            f"PlannerConfig.max_step_delta has {len(d)} entries; the action has {action_dim} dims "
            "(give one value or one per dim)"
        )


def _positive(value: float, name: str) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ConfigError(f"PlannerConfig.{name} must be a positive number, got {value!r}")

