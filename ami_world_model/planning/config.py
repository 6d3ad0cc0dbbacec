"""PlannerConfig: every knob of the latent-space planner; its defaults are the planner node's budget.

Build it from YAML / ROS parameters with ``config.from_dict(PlannerConfig, d)`` (unknown keys are errors).
Fractions (``init_std``, ``min_std``, ``grad_refine_lr``) are relative to the action range ``high - low`` of
each dimension, so one config fits any action spec; ``max_step_delta`` is in physical units because it is a
safety limit the user reasons about (m/s per control period for twist actions).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List

from ami_world_model.config import ConfigError, check_params, param

METHODS = ("cem", "mppi")
ENERGIES = ("auto", "l1", "l2", "readout")
DYNAMICS = ("auto", "latent", "pose")


@dataclass
class PlannerConfig:
    """Sampling-based MPC over action sequences in the world model's latent space.

    The one definition of the planner's settings and defaults: the planner node exposes every field as the
    ROS parameter ``planner.<name>`` (descriptors, config/planner.yaml and docs/PARAMETERS.md are generated
    from the ``param()`` metadata below). Defaults are the node's budget: 64 samples x 4 iterations.
    """

    method: str = param("cem", "cem: mean/std of the top_k elites; mppi: temperature-weighted average of all "
                               "samples.", choices=METHODS)
    num_samples: int = param(64, "S, candidate action sequences per iteration (one batched rollout).",
                             lo=2, hi=100000)
    horizon_steps: int = param(3, "H, actions per sequence (each held for the model's step).", lo=1, hi=100)
    iterations: int = param(4, "Max optimiser iterations per plan (anytime: the deadline may cut).",
                            lo=1, hi=1000)
    top_k: int = param(16, "CEM elites (MPPI ignores it); must not exceed num_samples.", lo=1, hi=100000)
    momentum: float = param(0.1, "Weight of the previous mean/std when smoothing the update (0: none).",
                            lo=0.0, hi=0.999)
    mppi_temperature: float = param(0.1, "MPPI lambda, in units of the median-to-best cost gap (scale-free).",
                                    lo=1e-9, hi=1e6)
    init_std: float = param(0.5, "Initial sampling std on a cold start, fraction of the action range.",
                            lo=1e-9, hi=10.0)
    warm_std: float = param(0.1, "Initial std when warm-starting (the shifted plan is already close).",
                            lo=1e-9, hi=10.0)
    min_std: float = param(0.02, "Std floor, fraction of the action range (keeps exploring); <= init_std, "
                                 "warm_std.", lo=0.0, hi=10.0)
    energy: str = param("auto", "Distance to the goal: l1 / l2 between latents (V-JEPA 2-AC: l1), readout "
                                "(weighted distance of the tool and object positions the model's read-out "
                                "head sees, metres), auto (readout when the model has the head, else l1).",
                        choices=ENERGIES)
    dynamics: str = param("auto", "What the planner steps: latent (the latent predictor), pose (the read-out-space "
                                  "dynamics head of a model trained with --pose-dynamics-frame: positions and "
                                  "joint state one control period at a time, energy the read-out distance), auto "
                                  "(pose when the model has the head, else latent).", choices=DYNAMICS)
    sum_intermediate: bool = param(False, "Sum the energy over all H predicted steps instead of the last only.")
    rate_penalty: float = param(0.0, "Weight of the mean squared (normalised) action change, including vs the "
                                     "last command.", lo=0.0, hi=1e6)
    max_step_delta: List[float] = param([], "Hard |a_t - a_(t-1)| per action dim in physical units (one value "
                                            "for all dims or one per dim); empty: no rate limit.")
    warm_start: bool = param(True, "Start from the previous plan shifted one step (receding horizon).")
    grad_refine_steps: int = param(0, "Adam steps on the best sequence after sampling (torch backend only: "
                                      "needs differentiable dynamics); 0: off.", lo=0, hi=1000)
    grad_refine_lr: float = param(0.05, "Adam learning rate, fraction of the action range.", lo=1e-9, hi=10.0)
    seed: int = param(0, "torch.Generator seed: same seed and inputs give the same plan.", lo=0, hi=2**31 - 1)

    def __post_init__(self) -> None:
        if not isinstance(self.max_step_delta, list):
            raise ConfigError(f"PlannerConfig.max_step_delta must be a list, got {self.max_step_delta!r}")
        self.max_step_delta = [float(x) for x in self.max_step_delta]
        check_params(self)
        if self.method not in METHODS:
            raise ConfigError(f"PlannerConfig.method must be one of {METHODS}, got {self.method!r}")
        if self.energy not in ENERGIES:
            raise ConfigError(f"PlannerConfig.energy must be one of {ENERGIES}, got {self.energy!r}")
        if self.dynamics not in DYNAMICS:
            raise ConfigError(f"PlannerConfig.dynamics must be one of {DYNAMICS}, got {self.dynamics!r}")
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

