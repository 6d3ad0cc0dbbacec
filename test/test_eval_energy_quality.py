"""Latent-energy quality: rank correlation and fall fraction, and scoring a checkpoint on scripted episodes."""
import math

import numpy as np
import pytest
from model_helpers import perturbed_tiny_model

from ami_world_model.evaluation.energy_quality import (
    energy_quality,
    falls,
    latent_energies,
    rank,
    score_checkpoint,
    spearman,
)
from ami_world_model.models.checkpoint import save_world_model


def _episodes(n=40, t=30, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):  # a noisy, mostly falling distance, like a push that makes progress
        d = np.maximum(0.0, 0.06 - np.cumsum(rng.uniform(-0.002, 0.006, size=t)))
        out.append(d)
    return out, rng


def test_energy_equal_to_the_distance_scores_one():
    dists, _ = _episodes()
    q = energy_quality([(d, d) for d in dists])
    assert q.spearman_mean == pytest.approx(1.0) and q.spearman_min == pytest.approx(1.0)
    assert q.fall_fraction == 1.0 and q.progress_steps > 100
    assert q.closest_not_lower == 0
    # a monotone transform of the distance is as good for the planner: ranks, not values, count
    q2 = energy_quality([(np.exp(5 * d) + 3.0, d) for d in dists])
    assert q2.spearman_mean == pytest.approx(1.0) and q2.fall_fraction == 1.0


def test_random_energy_scores_about_zero_and_chance():
    dists, rng = _episodes(n=200)
    q = energy_quality([(rng.normal(size=len(d)), d) for d in dists])
    assert abs(q.spearman_mean) < 0.05
    assert abs(q.fall_fraction - 0.5) < 0.05
    assert q.spearman_min < -0.3 and q.spearman_max > 0.3  # per episode it scatters: the mean is the signal


def test_inverted_energy_scores_minus_one_and_never_falls():
    dists, _ = _episodes(n=5)
    q = energy_quality([(-d, d) for d in dists])
    assert q.spearman_mean == pytest.approx(-1.0) and q.fall_fraction == 0.0 and q.closest_not_lower == 5


def test_rank_ties_and_spearman_edge_cases():
    np.testing.assert_array_equal(rank(np.array([3.0, 1.0, 3.0, 2.0])), [2.5, 0.0, 2.5, 1.0])
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486833, abs=1e-6)  # scipy's value
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3])) and math.isnan(spearman([1, 2], [1, 2]))
    with pytest.raises(ValueError):
        spearman([1, 2, 3], [1, 2])
    with pytest.raises(ValueError):
        energy_quality([])


def test_falls_counts_only_progress_steps_and_strides():
    d = [0.05, 0.05, 0.04, 0.045, 0.03, 0.0305]
    e = [1.0, 0.5, 0.6, 0.4, 0.3, 0.2]
    # progress steps: 1->2 (energy rose), 3->4 (fell); 0->1 and 4->5 are no progress (< 1 mm drop)
    assert falls(e, d) == (1, 2)
    assert falls(e, d, stride=2) == (4, 4)  # 0->2, 1->3, 2->4, 3->5 all progress, all fell


def test_latent_energies_use_the_planner_l1_energy():
    def encode(x):  # [B, 3, H, W] -> [B, 1, 3]: per-channel means as a 1-token latent
        return x.mean(dim=(2, 3)).unsqueeze(1)

    goal = np.full((8, 8, 3), 100, np.uint8)
    frames = np.stack([np.full((8, 8, 3), v, np.uint8) for v in (100, 151, 202)])
    e = latent_energies(encode, frames, goal)
    np.testing.assert_allclose(e, [0.0, 51 / 255, 102 / 255], atol=1e-6)


def test_score_checkpoint_on_scripted_episodes(tmp_path):
    model = perturbed_tiny_model(0)
    stem = save_world_model(model, tmp_path / "wm")
    out = score_checkpoint(str(stem), tasks=("push", "reach"), seeds=(7, 8), max_steps=25, strides=(1, 3))
    for task in ("push", "reach"):
        q = out[task]["stride_1"]
        assert q["episodes"] == 2 and len(q["spearman_per_episode"]) == 2 and q["progress_steps"] > 0
        assert -1.0 <= q["spearman_mean"] <= 1.0 and 0.0 <= q["fall_fraction"] <= 1.0
        assert out[task]["seeds"] == [7, 8] and "stride_3" in out[task]
    assert "pushing_stride_1" in out["push"] and "pushing_stride_1" not in out["reach"]
    assert out["reach"]["expert_success"] == 1.0  # 25 ticks are enough for the scripted reach


def test_scripted_expert_pushes_the_block_to_its_goal():
    from ami_world_model.sim.cell import SimCell
    from ami_world_model.sim.scripted import scripted_trajectory

    cell = SimCell()
    try:
        tr = scripted_trajectory(cell, "push", 300_001, max_steps=60)
    finally:
        cell.close()
    assert tr.success and tr.distances_m[-1] < tr.distances_m[0] - 0.02
    i = tr.first_block_move()
    assert 0 < i < len(tr.distances_m) - 1
    assert np.allclose(tr.block_xy[: i + 1], tr.block_xy[0], atol=1e-3)  # still before, moving after
    assert np.linalg.norm(tr.block_xy[-1] - tr.block_xy[0]) > 0.02
    assert tr.images.shape[0] == len(tr.distances_m) == tr.actions.shape[0] + 1


def test_candidate_ranking_runs_true_and_predicted_futures(tmp_path):
    from ami_world_model.evaluation.candidate_ranking import candidate_ranking

    stem = save_world_model(perturbed_tiny_model(1), tmp_path / "wm")
    out = candidate_ranking(str(stem), tasks=("push",), seeds=(9,), states_per_episode=1, candidates=6)
    r = out["push"]
    assert r["encoded_vs_tool"]["states"] == 1
    assert r["encoded"]["states"] == 1 and r["predicted"]["states"] == 1 and r["candidates"] == 6
    for kind in ("encoded", "predicted"):
        assert r[kind]["spearman_mean"] is None or -1.0 <= r[kind]["spearman_mean"] <= 1.0
        assert r[kind]["pick_regret_m"] >= 0.0
    assert r["random_pick_regret_m"] >= 0.0


def test_pick_regret():
    from ami_world_model.evaluation.candidate_ranking import pick_regret

    true = np.array([0.05, 0.02, 0.04])
    assert pick_regret(np.array([3.0, 1.0, 2.0]), true) == 0.0
    assert pick_regret(np.array([1.0, 3.0, 2.0]), true) == pytest.approx(0.03)
