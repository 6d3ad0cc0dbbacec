"""The node's model side without ROS: output validation, planner bounds, surprise against a hand computation."""
import numpy as np
import pytest
import torch
from test_planner_node_harness import save_tiny

from ami_world_model.config import ConfigError
from ami_world_model.models.checkpoint import load_world_model
from ami_world_model.node_config import PlannerNodeConfig
from ami_world_model.ros.engine import PlanningEngine


def _cfg(**kw):
    base = dict(backend="torch", planner_num_samples=16, planner_iterations=1, planner_horizon_steps=2)
    base.update(kw)
    return PlannerNodeConfig(**base)


def _img(seed):
    return np.random.default_rng(seed).random((3, 64, 64), dtype=np.float32)


def test_output_mode_validation(tmp_path):
    twist = PlanningEngine(_cfg(), save_tiny(tmp_path / "t"))
    assert twist.validate_output("servo_twist", []) == []
    with pytest.raises(ConfigError, match="joint_velocity"):
        twist.validate_output("joint_trajectory", [])
    joints = PlanningEngine(_cfg(), save_tiny(tmp_path / "j", kind="joint_velocity", names=("a", "b")))
    assert joints.validate_output("joint_trajectory", []) == ["a", "b"]
    assert joints.validate_output("joint_trajectory", ["a", "b"]) == ["a", "b"]
    with pytest.raises(ConfigError, match="same order"):
        joints.validate_output("joint_trajectory", ["b", "a"])
    with pytest.raises(ConfigError, match="twist"):
        joints.validate_output("servo_twist", [])


def test_plans_within_velocity_limits(tmp_path):
    e = PlanningEngine(_cfg(max_linear_velocity_mps=0.05), save_tiny(tmp_path / "t"))
    e.set_goal(_img(0))
    for i in range(3):
        r = e.step(_img(i + 1), None, deadline_s=5.0)
        assert r.actions.shape == (2, 2)
        assert np.all(np.abs(r.actions) <= 0.05 + 1e-6)  # spec allows 0.2; the node limit is tighter
        e.record_sent(r.action)


def test_surprise_matches_hand_computation(tmp_path):
    path = save_tiny(tmp_path / "t", metrics={"val_one_step_l1": 0.05})
    e = PlanningEngine(_cfg(), path)
    assert e.surprise_scale == 0.05 and "checkpoint" in e.surprise_scale_source
    e.set_goal(_img(0))
    r0 = e.step(_img(1), None, deadline_s=5.0)
    assert r0.surprise_ratio is None  # nothing predicted yet
    a = [0.03, -0.02]
    e.record_sent(a)
    r1 = e.step(_img(2), None, deadline_s=5.0)
    model = load_world_model(path)
    with torch.no_grad():
        z1 = model.encode(torch.from_numpy(_img(1))[None])  # [1, N, D]
        pred = model.next(z1[:, None], torch.tensor([[a]], dtype=torch.float32))  # k = 1
        z2 = model.encode(torch.from_numpy(_img(2))[None])
    expected = float((pred - z2).abs().mean()) / 0.05
    assert r1.surprise_ratio == pytest.approx(expected, rel=1e-4)
    e.reset()
    assert e.step(_img(3), None, deadline_s=5.0).surprise_ratio is None  # a stop forgets the prediction


def test_fallback_scale_without_metrics(tmp_path):
    e = PlanningEngine(_cfg(surprise_scale_fallback=0.2), save_tiny(tmp_path / "t"))
    assert e.surprise_scale == 0.2 and e.surprise_scale_source == "surprise_scale_fallback"
