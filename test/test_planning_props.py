"""Property test: over random problems, no returned or evaluated action ever breaks the hard limits."""
from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ami_world_model.planning import PlannerConfig, RecedingHorizonController

TOL = 1e-5  # float32 rounding of the clamps (actions are O(1))


@st.composite
def problems(draw):
    a_dim = draw(st.integers(1, 3))
    n = draw(st.integers(1, 4))
    low = [draw(st.floats(-2.0, 0.5)) for _ in range(a_dim)]
    high = [lo + draw(st.floats(0.05, 2.0)) for lo in low]
    delta = draw(st.one_of(st.just([]), st.lists(st.floats(0.01, 1.0), min_size=a_dim, max_size=a_dim)))
    prev = [draw(st.floats(lo, hi)) for lo, hi in zip(low, high)]
    cfg = PlannerConfig(
        method=draw(st.sampled_from(["cem", "mppi"])),
        num_samples=draw(st.integers(2, 24)),
        horizon_steps=draw(st.integers(1, 4)),
        iterations=draw(st.integers(1, 3)),
        top_k=1,
        init_std=draw(st.floats(0.05, 3.0)),  # wide samples: most need clamping
        min_std=0.0,
        rate_penalty=draw(st.sampled_from([0.0, 0.5])),
        max_step_delta=delta,
        grad_refine_steps=draw(st.sampled_from([0, 2])),
        seed=draw(st.integers(0, 2**31 - 1)),
    )
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    a_mat = torch.randn(n, n, generator=gen) * 0.5
    b_mat = torch.randn(n, a_dim, generator=gen)
    goal = torch.randn(n, generator=gen) * draw(st.floats(0.0, 10.0))  # often unreachable: pushes to bounds
    return cfg, low, high, prev, a_mat, b_mat, goal


@settings(max_examples=40, deadline=None)
@given(problems())
def test_bounds_and_step_limits_never_violated(problem) -> None:
    cfg, low, high, prev, a_mat, b_mat, goal = problem
    lo, hi = torch.tensor(low), torch.tensor(high)
    seen = []

    def dyn(z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        seen.append(a.detach().clone())
        return z @ a_mat.T + a @ b_mat.T

    ctrl = RecedingHorizonController(cfg, low, high)
    last = torch.tensor(prev)
    z = torch.zeros(1, a_mat.shape[0])
    for tick in range(2):  # a cold plan, then a warm-started one measured from the executed action
        res = ctrl.plan(z, goal, dyn, prev_action=last if tick == 0 else None)
        acts = res.actions
        assert acts.shape == (cfg.horizon_steps, len(low))
        assert bool(torch.all(acts >= lo - TOL)) and bool(torch.all(acts <= hi + TOL)), acts
        if cfg.max_step_delta:
            d = torch.tensor(cfg.step_delta(len(low)))
            steps = torch.cat([last[None], acts]).diff(dim=0).abs()
            assert bool(torch.all(steps <= d + TOL)), (steps, d)
        last = acts[0]
        z = dyn(z, acts[:1])
    # Every candidate the dynamics ever saw was inside the bounds too (a model is never asked about
    # actions outside the range it was trained on).
    every = torch.cat(seen)
    assert bool(torch.all(every >= lo - TOL)) and bool(torch.all(every <= hi + TOL))
