"""Receding-horizon controller: warm-started, anytime CEM / MPPI over latent rollouts.

Each ``plan()`` call (one control tick):
  1. starts from the previous plan shifted one step (warm start) or from the middle of the bounds;
  2. iterates sample -> project onto the hard limits -> batched rollout -> refit (CEM or MPPI), keeping the
     best sequence seen; with ``deadline_s`` it starts another iteration only if the slowest one so far
     still fits, so it overruns the deadline by at most one batched rollout (the first iteration always
     runs: a plan is needed);
  3. optionally refines the best sequence by gradient descent through differentiable dynamics;
  4. returns a ``PlanResult`` whose first action respects the bounds and ``max_step_delta`` relative to the
     last commanded action, plus the figures a caller needs to decide to stop when unsure
     (``energy_per_iter``, ``zero_action_energy``).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ami_world_model.planning.cem import cem_update
from ami_world_model.planning.config import PlannerConfig
from ami_world_model.planning.dynamics import DynamicsFn, expand_state, first_tensor, state_batch
from ami_world_model.planning.energy import EnergyFn, make_energy, rate_cost
from ami_world_model.planning.mppi import mppi_update
from ami_world_model.planning.sampling import project_sequences, sample_sequences

ArrayLike = Union[Sequence[float], Tensor]


class PlanningError(RuntimeError):
    """The planner could not produce a plan (e.g. every candidate's cost was NaN/inf)."""


@dataclass
class PlanResult:
    """One planning step's outcome. Energies are latent energies (no rate penalty); ``cost`` adds it."""

    actions: Tensor  # [H, A] best feasible sequence, physical units, on the planner's device
    energy: float  # energy of `actions`
    cost: float  # energy + rate penalty of `actions` (what was minimised)
    energy_per_iter: List[float]  # energy of the best-so-far sequence after each iteration
    zero_action_energy: float  # energy of "do nothing" (zero actions, projected onto the limits)
    iterations: int  # sampling iterations run (< cfg.iterations when the deadline stopped it)
    elapsed_s: float  # wall time of the whole call
    prev_action: Tensor  # [A] the last commanded action the first step's rate limit was measured from
    grad_steps: int = 0  # gradient refinement steps run
    deadline_hit: bool = False  # stopped early to meet the deadline
    iteration_s: List[float] = field(default_factory=list)  # wall time of each iteration

    @property
    def improvement(self) -> float:
        """How much better than doing nothing the plan is (<= 0: planning found no progress)."""
        return self.zero_action_energy - self.energy


class RecedingHorizonController:
    """Plans an action sequence each control tick and keeps it to warm-start the next tick.

    Args:
        cfg: planner settings.
        action_low, action_high: ``[A]`` bounds in physical units (from the model's ActionSpec).
        device: where candidates are sampled; None = the device of the first state passed to ``plan``.
    """

    def __init__(
        self,
        cfg: PlannerConfig,
        action_low: ArrayLike,
        action_high: ArrayLike,
        device: Optional[Union[str, torch.device]] = None,
    ) -> None:
        low = torch.as_tensor(action_low, dtype=torch.float32).flatten().cpu()
        high = torch.as_tensor(action_high, dtype=torch.float32).flatten().cpu()
        if low.shape != high.shape or low.numel() == 0:
            raise ValueError(f"action bounds need equal non-zero lengths, got {low.tolist()} / {high.tolist()}")
        if not bool(torch.all(low < high)) or not bool(torch.isfinite(low).all() & torch.isfinite(high).all()):
            raise ValueError(f"action bounds: low {low.tolist()} must be finite and below high {high.tolist()}")
        self.cfg = cfg
        self.action_dim = low.numel()
        delta = cfg.step_delta(self.action_dim)  # raises ConfigError on a length mismatch
        self._low_cpu, self._high_cpu = low, high
        self._delta_cpu = torch.tensor(delta, dtype=torch.float32) if delta else None
        # "readout" needs the model's head: its caller passes the energy (control/engine.py does)
        self._energy_default = make_energy(cfg.energy) if cfg.energy != "readout" else None
        self.device: Optional[torch.device] = torch.device(device) if device is not None else None
        self._generator: Optional[torch.Generator] = None
        self._plan: Optional[Tensor] = None  # [H, A] previous best plan (warm start)
        self._last_action: Optional[Tensor] = None  # [A] first action of the previous plan
        if self.device is not None:
            self._bind(self.device)

    # -- public -----------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the warm start and the last action (goal change, after a stop) and reseed the sampler."""
        self._plan = None
        self._last_action = None
        if self.device is not None:
            self._generator = torch.Generator(device=self.device).manual_seed(self.cfg.seed)

    def plan(
        self,
        state0: Any,
        goal: Tensor,
        dynamics: DynamicsFn,
        deadline_s: Optional[float] = None,
        prev_action: Optional[ArrayLike] = None,
        energy: Optional[EnergyFn] = None,
    ) -> PlanResult:
        """Plan ``horizon_steps`` actions from ``state0`` towards ``goal``.

        Args:
            state0: the current state with a leading batch dim of 1 (a tensor whose first dim is not 1 is
                unsqueezed, so ``[k, N, D]`` works for k > 1; pass ``[1, 1, N, D]`` when k = 1), or a
                ``WorldModelState`` / tuple of tensors of batch 1.
            goal: goal latent, compared by the energy with each predicted state.
            dynamics: ``(state [S, ...], actions [S, A]) -> state [S, ...]``.
            deadline_s: wall-time budget of this call from its start; None = run all iterations.
            prev_action: ``[A]`` the action last sent to the robot; None = the first action this controller
                returned last time, or zeros after ``reset()`` / at start (robot at rest).
            energy: ``(state, goal) -> [S]``; None = the configured L1/L2 energy on ``state.latest``.
        Returns:
            A PlanResult.
        """
        t_start = time.perf_counter()
        if deadline_s is not None and not (deadline_s > 0 and math.isfinite(deadline_s)):
            raise ValueError(f"deadline_s must be a positive number of seconds, got {deadline_s}")
        cfg = self.cfg
        state0 = self._batch_one(state0)
        device = first_tensor(state0).device
        if self.device is None:
            self._bind(device)
        elif device != self.device:
            raise ValueError(f"state is on {device} but the controller plans on {self.device}")
        energy_fn = energy or self._energy_default
        if energy_fn is None:
            raise ValueError("planner.energy is 'readout': pass the read-out energy (make_energy('readout', ...))")
        goal = goal.to(device)
        low, high, delta = self._low, self._high, self._delta
        scale = high - low
        prev = self._previous_action(prev_action)
        min_std = cfg.min_std * scale

        H, S = cfg.horizon_steps, cfg.num_samples
        if cfg.warm_start and self._plan is not None:
            mean = torch.cat([self._plan[1:], self._plan[-1:]], dim=0)  # shift one step, repeat the last
            std = (cfg.warm_std * scale).expand(H, -1).clone()
        else:
            mean = ((low + high) / 2).expand(H, -1).clone()
            std = (cfg.init_std * scale).expand(H, -1).clone()
        mean = project_sequences(mean.unsqueeze(0), low, high, prev, delta)[0]
        zero_seq = project_sequences(torch.zeros(1, H, self.action_dim, device=device), low, high, prev, delta)
        state_s = expand_state(state0, S)

        best_cost, best_energy, best = math.inf, math.inf, mean
        zero_energy = math.nan
        energy_per_iter: List[float] = []
        iteration_s: List[float] = []
        deadline_hit = False
        with torch.no_grad():
            for it in range(cfg.iterations):
                if it > 0 and deadline_s is not None:
                    if time.perf_counter() - t_start + max(iteration_s) > deadline_s:
                        deadline_hit = True
                        break
                t_it = time.perf_counter()
                samples = sample_sequences(mean, std, S, self._generator)  # [S, H, A]; [0] = mean
                if it == 0:
                    samples[1] = zero_seq[0]  # score "do nothing" in the same batched rollout
                samples = project_sequences(samples, low, high, prev, delta)
                energies, costs = self._evaluate(state_s, goal, samples, dynamics, energy_fn, prev, scale)
                if it == 0:
                    zero_energy = float(energies[1])
                i_best = int(torch.argmin(costs))
                if float(costs[i_best]) < best_cost:
                    best_cost, best_energy = float(costs[i_best]), float(energies[i_best])
                    best = samples[i_best].clone()
                if not math.isfinite(best_cost):
                    raise PlanningError(
                        "every candidate's energy was NaN or inf: check the dynamics, the goal and the state"
                    )
                if cfg.method == "cem":
                    mean, std = cem_update(samples, costs, mean, std, cfg.top_k, cfg.momentum, min_std)
                else:
                    mean, std = mppi_update(
                        samples, costs, mean, std, cfg.mppi_temperature, cfg.momentum, min_std
                    )
                energy_per_iter.append(best_energy)
                iteration_s.append(time.perf_counter() - t_it)

        grad_steps = 0
        # Under inference_mode no autograd graph can be built (a node plans there): sampling only.
        if cfg.grad_refine_steps > 0 and not deadline_hit and not torch.is_inference_mode_enabled():
            best, best_cost, best_energy, grad_steps, deadline_hit = self._refine(
                state0, goal, dynamics, energy_fn, prev, scale, best, best_cost, best_energy,
                t_start, deadline_s, max(iteration_s),
            )

        self._plan = best
        self._last_action = best[0].clone()
        return PlanResult(
            actions=best,
            energy=best_energy,
            cost=best_cost,
            energy_per_iter=energy_per_iter,
            zero_action_energy=zero_energy,
            iterations=len(energy_per_iter),
            elapsed_s=time.perf_counter() - t_start,
            prev_action=prev,
            grad_steps=grad_steps,
            deadline_hit=deadline_hit,
            iteration_s=iteration_s,
        )

    # -- internals --------------------------------------------------------------------------------------
    def _bind(self, device: torch.device) -> None:
        """Put bounds and the seeded generator on ``device`` (once)."""
        self.device = device
        self._low = self._low_cpu.to(device)
        self._high = self._high_cpu.to(device)
        self._delta = self._delta_cpu.to(device) if self._delta_cpu is not None else None
        self._generator = torch.Generator(device=device).manual_seed(self.cfg.seed)

    @staticmethod
    def _batch_one(state0: Any) -> Any:
        if isinstance(state0, Tensor) and (state0.dim() == 0 or state0.shape[0] != 1):
            state0 = state0.unsqueeze(0)
        if state_batch(state0) != 1:
            raise ValueError(f"plan() takes one state (batch 1), got batch {state_batch(state0)}")
        return state0

    def _previous_action(self, prev_action: Optional[ArrayLike]) -> Tensor:
        if prev_action is not None:
            prev = torch.as_tensor(prev_action, dtype=torch.float32).to(self.device).flatten()
            if prev.numel() != self.action_dim or not bool(torch.isfinite(prev).all()):
                raise ValueError(
                    f"prev_action must be {self.action_dim} finite numbers, got {prev.tolist()}"
                )
            return prev
        if self._last_action is not None:
            return self._last_action
        # At rest; clamped in case the bounds exclude zero.
        return torch.zeros(self.action_dim, device=self.device).clamp(self._low, self._high)

    def _evaluate(
        self,
        state: Any,
        goal: Tensor,
        actions: Tensor,
        dynamics: DynamicsFn,
        energy_fn: EnergyFn,
        prev: Tensor,
        scale: Tensor,
    ) -> Tuple[Tensor, Tensor]:
        """Batched rollout of ``actions [S, H, A]``; returns ``(energies [S], costs [S])``, NaN -> +inf."""
        n = actions.shape[0]
        total = torch.zeros(n, device=actions.device)
        H = actions.shape[1]
        shape = first_tensor(state).shape
        for t in range(H):  # the horizon is sequential; every step is batched over all S candidates
            state = dynamics(state, actions[:, t])
            if first_tensor(state).shape != shape:
                raise PlanningError(
                    f"dynamics changed the state shape {tuple(shape)} -> {tuple(first_tensor(state).shape)}; "
                    "it must return the next state in the same shape (a 1-D state needs a batch dim: [1, n])"
                )
            if self.cfg.sum_intermediate or t == H - 1:
                e = energy_fn(state, goal)
                if e.shape != (n,):
                    raise PlanningError(f"energy returned shape {tuple(e.shape)}, expected ({n},)")
                total = total + e.float()
        costs = total
        if self.cfg.rate_penalty > 0:
            costs = costs + self.cfg.rate_penalty * rate_cost(actions, prev, scale)
        bad = ~torch.isfinite(costs)
        return total.masked_fill(bad, math.inf), costs.masked_fill(bad, math.inf)

    def _refine(
        self,
        state0: Any,
        goal: Tensor,
        dynamics: DynamicsFn,
        energy_fn: EnergyFn,
        prev: Tensor,
        scale: Tensor,
        best: Tensor,
        best_cost: float,
        best_energy: float,
        t_start: float,
        deadline_s: Optional[float],
        first_estimate_s: float,
    ) -> Tuple[Tensor, float, float, int, bool]:
        """Adam on the best sequence (in range-normalised units), projected after each step; keeps the best.

        Before any step is timed, one sampling iteration's time stands in for a step's (conservative: a
        batch-1 forward + backward rarely costs more than a batch-S forward)."""
        u = (best / scale).unsqueeze(0).clone().requires_grad_(True)  # [1, H, A]
        opt = torch.optim.Adam([u], lr=self.cfg.grad_refine_lr)
        steps, slowest, hit = 0, first_estimate_s, False
        with torch.enable_grad():
            for i in range(self.cfg.grad_refine_steps + 1):  # +1: score the last update too
                if deadline_s is not None and time.perf_counter() - t_start + slowest > deadline_s:
                    hit = True
                    break
                t0 = time.perf_counter()
                a = project_sequences(u * scale, self._low, self._high, prev, self._delta)
                energies, costs = self._evaluate(state0, goal, a, dynamics, energy_fn, prev, scale)
                cost = float(costs.detach()[0])
                if cost < best_cost:
                    best_cost, best_energy, best = cost, float(energies.detach()[0]), a[0].detach().clone()
                if i == self.cfg.grad_refine_steps or not costs.requires_grad or not math.isfinite(cost):
                    break  # done, or the dynamics are not differentiable / diverged
                opt.zero_grad()
                costs.sum().backward()
                opt.step()
                steps += 1
                took = time.perf_counter() - t0
                slowest = took if steps == 1 else max(slowest, took)
        return best, best_cost, best_energy, steps, hit
