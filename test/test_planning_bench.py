"""The planning benchmark compares like with like: its naive loop is the controller's algorithm."""
from __future__ import annotations

import torch

from ami_world_model.bench.planning import matmul_gflops, naive_plan
from ami_world_model.planning import PlannerConfig, RecedingHorizonController


def test_naive_loop_plans_exactly_like_the_batched_controller() -> None:
    a_mat = torch.tensor([[0.9, 0.2], [-0.1, 0.8]])
    b_mat = torch.tensor([[1.0, 0.0], [0.5, 1.0]])

    def dyn(z, a):  # elementwise-exact on any batch size (no reduction order differences)
        return torch.stack([z[:, 0] * a_mat[0, 0] + z[:, 1] * a_mat[0, 1] + a[:, 0],
                            z[:, 0] * a_mat[1, 0] + z[:, 1] * a_mat[1, 1] + b_mat[1, 0] * a[:, 0] + a[:, 1]], 1)

    cfg = PlannerConfig(num_samples=16, horizon_steps=3, iterations=3, top_k=4, warm_start=False, seed=5)
    low, high = torch.tensor([-0.5, -0.5]), torch.tensor([0.5, 0.5])
    z0, goal = torch.tensor([[0.1, -0.2]]), torch.tensor([0.6, 0.3])
    batched = RecedingHorizonController(cfg, low, high).plan(z0, goal, dyn).actions
    assert torch.allclose(naive_plan(cfg, low, high, z0, goal, dyn), batched, atol=1e-6)


def test_matmul_rate_is_measured() -> None:
    assert matmul_gflops([(64, 32, 32)], 0.01) > 0.0
