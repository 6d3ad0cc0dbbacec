"""The oracle planner: the project's CEM over the simulator's true dynamics, the true distance as energy."""
import numpy as np
import pytest
import torch

from ami_world_model.evaluation.failure import SUCCESS
from ami_world_model.evaluation.oracle import (
    SimDynamics,
    evaluate_oracle,
    node_planner_config,
    run_oracle_episode,
)


def test_sim_dynamics_rollout_matches_the_cell_and_keeps_the_root(cell):
    cell.reset(seed=4, task="push")
    dyn = SimDynamics(cell, max_samples=3, action_dt_s=0.3)
    root = dyn.root_state().expand(3, 1)
    seqs = torch.tensor([[[0.1, 0.0], [0.1, 0.05]], [[0.0, 0.1], [-0.05, 0.1]], [[-0.1, -0.1], [0.0, 0.0]]])
    state = root
    for t in range(2):
        state = dyn(state, seqs[:, t])
        assert state.shape == (3, 1) and 0 not in state[:, 0].tolist()
    energy = dyn.distance_energy("reach")(state, torch.zeros(2, dtype=torch.float64))
    assert energy.shape == (3,)
    snap = cell.snapshot()
    for j in range(3):  # each candidate ends where the cell ends when driven the same way
        cell.restore(snap)
        for t in range(2):
            cell.apply_twist(*seqs[j, t].double().tolist())
            for _ in range(3):
                cell.step()
        np.testing.assert_array_equal(dyn.batch.ee_xy([state[j, 0].item()])[0], cell.ee_position()[:2])
        assert energy[j].item() == pytest.approx(float(np.linalg.norm(cell.ee_position()[:2])), rel=1e-6)
    # a second rollout from the root starts from the unchanged root (slot 0 is never written)
    again = dyn(root, seqs[:, 0])
    cell.restore(snap)
    cell.apply_twist(*seqs[0, 0].double().tolist())
    for _ in range(3):
        cell.step()
    np.testing.assert_array_equal(dyn.batch.ee_xy([again[0, 0].item()])[0], cell.ee_position()[:2])
    with pytest.raises(ValueError):
        dyn(torch.zeros(4, 1, dtype=torch.long), torch.zeros(4, 2))
    with pytest.raises(ValueError):
        dyn.distance_energy("stack")


def test_oracle_solves_three_pushes_with_a_tiny_budget(cell):
    cfg = node_planner_config(num_samples=24, iterations=2, top_k=6)
    out = evaluate_oracle(["push"], seeds=[100_002, 100_003, 100_004], cfg=cfg, max_steps=30, cell=cell)["push"]
    assert out["success_n"] == 3 and out["success_rate"] == 1.0, out
    assert out["failures"][SUCCESS] == 3
    assert out["mean_final_distance_m"] <= cell.config.push_tolerance_m


def test_oracle_episode_records_a_trace_and_is_deterministic(cell):
    cfg = node_planner_config(num_samples=16, iterations=2, top_k=4)
    a = run_oracle_episode(cell, "reach", 100_000, cfg, max_steps=20)
    b = run_oracle_episode(cell, "reach", 100_000, cfg, max_steps=20)
    assert a.success and a.stop_reason == "goal_reached" and a.failure == SUCCESS
    assert len(a.distances_m) == a.steps + 1 == len(a.block_xy) and a.final_distance_m < a.initial_distance_m
    assert a.distances_m == b.distances_m  # fixed budget, seeded sampler: the same episode twice
