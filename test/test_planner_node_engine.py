"""The node's model side without ROS: output validation, planner bounds, surprise against a hand computation."""
import numpy as np
import pytest
import torch
from node_harness import save_tiny

from ami_world_model.config import ConfigError
from ami_world_model.control.engine import PlanningEngine, open_engine
from ami_world_model.models.checkpoint import load_world_model
from ami_world_model.node_config import PlannerNodeConfig
from ami_world_model.planning import PlannerConfig


def _cfg(**kw):
    planner = PlannerConfig(num_samples=16, iterations=1, horizon_steps=2, **kw.pop("planner", {}))
    return PlannerNodeConfig(backend="torch", planner=planner, **kw)


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


def test_frame_skip_model_predicts_skip_ticks_ahead_from_mean_actions(tmp_path):
    # a model trained with frame skip 3 at a 0.1 s recording: one model step = 3 control ticks at 10 Hz
    path = save_tiny(tmp_path / "t", metrics={"val_one_step_l1": 0.05}, dt_s=0.3, context_frames=2)
    e = PlanningEngine(_cfg(control_rate_hz=10.0), path)
    assert e.skip == 3
    e.set_goal(_img(0))
    sent = [[0.03, -0.02], [0.01, 0.0], [-0.02, 0.05], [0.0, 0.01]]
    ratios = []
    for t in range(5):
        ratios.append(e.step(_img(t + 1), None, deadline_s=5.0).surprise_ratio)
        if t < 4:
            e.record_sent(sent[t])
    assert ratios[:3] == [None, None, None]  # no frame 3 ticks back yet
    model = load_world_model(path)
    z = {t: model.encode(torch.from_numpy(_img(t + 1))[None]).detach() for t in range(5)}  # tick -> [1, N, D]
    mean = lambda a: torch.tensor(a, dtype=torch.float32).mean(0)  # noqa: E731
    with torch.no_grad():
        # tick 3 from tick 0 (k=2: the older context frame is padded with tick 0 itself, zero action)
        ctx = torch.stack([z[0], z[0]], 1)
        pred3 = model.next(ctx, torch.stack([torch.zeros(2), mean(sent[0:3])])[None])
        # tick 4 from tick 1, again padded (tick -2 does not exist)
        pred4 = model.next(torch.stack([z[1], z[1]], 1), torch.stack([torch.zeros(2), mean(sent[1:4])])[None])
    assert ratios[3] == pytest.approx(float((pred3 - z[3]).abs().mean()) / 0.05, rel=1e-4)
    assert ratios[4] == pytest.approx(float((pred4 - z[4]).abs().mean()) / 0.05, rel=1e-4)
    # the planning state at tick 4: frames at ticks 1 and 4, the mean action sent in between
    st = e._state_at(4)
    assert torch.allclose(st.z[0, 0], z[1][0]) and torch.allclose(st.z[0, 1], z[4][0])
    assert torch.allclose(st.actions[0, 0], mean(sent[1:4]))


def test_a_frame_without_a_command_breaks_the_history(tmp_path):
    e = PlanningEngine(_cfg(), save_tiny(tmp_path / "t", metrics={"val_one_step_l1": 0.05}))
    e.set_goal(_img(0))
    e.step(_img(1), None, deadline_s=5.0)
    e.record_sent([0.01, 0.0])
    assert e.step(_img(2), None, deadline_s=5.0).surprise_ratio is not None
    # no command after frame 2 (a stop): frame 3 has no prediction, and is not paired with frame 2
    assert e.step(_img(3), None, deadline_s=5.0).surprise_ratio is None
    assert len(e._z_ticks) == 1


def test_fallback_scale_without_metrics(tmp_path):
    e = PlanningEngine(_cfg(surprise_scale_fallback=0.2), save_tiny(tmp_path / "t"))
    assert e.surprise_scale == 0.2 and e.surprise_scale_source == "surprise_scale_fallback"


def test_gradient_refinement_runs_in_the_engine(tmp_path):
    # step() is not under inference_mode: the planner's own grad refinement builds its graph (torch backend)
    e = PlanningEngine(_cfg(planner={"grad_refine_steps": 3}), save_tiny(tmp_path / "t"))
    e.set_goal(_img(0))
    r = e.step(_img(1), None, deadline_s=30.0)
    assert r.grad_steps > 0 and np.all(np.isfinite(r.actions))
    off = PlanningEngine(_cfg(), save_tiny(tmp_path / "u"))
    off.set_goal(_img(0))
    assert off.step(_img(1), None, deadline_s=30.0).grad_steps == 0


def test_every_planner_field_reaches_the_planner(tmp_path):
    cfg = _cfg(planner={"method": "mppi", "top_k": 4, "momentum": 0.3, "rate_penalty": 0.5, "seed": 7,
                        "max_step_delta": [0.01]})
    e = PlanningEngine(cfg, save_tiny(tmp_path / "t"))
    assert e.controller.cfg == cfg.planner


def test_twist_frame_must_match_the_checkpoints_action_frame(tmp_path):
    """A twist learnt in one frame and sent in another moves the arm the wrong way: configure refuses it."""
    ck = save_tiny(tmp_path / "tool", frame_id="tool0")
    with pytest.raises(ConfigError, match="tool0"):
        open_engine(_cfg(twist_frame_id="base_link"), ck)
    engine, _, warnings = open_engine(_cfg(twist_frame_id="tool0"), ck)
    engine.close()
    assert not any("frame" in w for w in warnings)
    engine, _, warnings = open_engine(_cfg(), save_tiny(tmp_path / "unknown", frame_id=""))
    engine.close()
    assert any("does not say which frame" in w for w in warnings)


def test_image_crop_is_parsed_once_and_bad_values_fail_the_config(tmp_path):
    e = PlanningEngine(_cfg(image_crop="center"), save_tiny(tmp_path / "t"))
    assert e.crop == "center"
    assert PlanningEngine(_cfg(image_crop="0,10,64,48"), save_tiny(tmp_path / "r")).crop == (0, 10, 64, 48)
    with pytest.raises(ConfigError, match="image_crop"):
        _cfg(image_crop="left half")


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class SlowBackend:
    """The engine's real backend, but every predictor call advances a fake clock by ``per_sample_s`` per
    candidate (and every encode by ``encode_s``): a machine that is slower in a known way, no wall time."""

    def __init__(self, inner, clock: FakeClock, per_sample_s: float, encode_s: float = 1e-3) -> None:
        self.inner, self.clock, self.per_sample_s, self.encode_s = inner, clock, per_sample_s, encode_s
        self.batches = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode(self, x):
        self.clock.t += self.encode_s
        return self.inner.encode(x)

    def next(self, z, actions, states=None):
        self.batches.append(z.shape[0])
        self.clock.t += self.per_sample_s * z.shape[0]
        return self.inner.next(z, actions, states)


def _sized_engine(tmp_path, name, per_sample_s, **kw):
    """An engine planning 32 x 4 (top 8; H = 2) at 10 Hz, deadline 80 ms, auto-sized on a backend that costs
    ``per_sample_s`` per candidate and model step."""
    planner = PlannerConfig(num_samples=32, iterations=4, top_k=8, horizon_steps=2)
    e = PlanningEngine(PlannerNodeConfig(backend="torch", planner=planner, control_rate_hz=10.0, **kw),
                       save_tiny(tmp_path / name))
    clock = FakeClock()
    e.backend = SlowBackend(e.backend, clock, per_sample_s)
    e.warm_up(clock=clock)
    return e


def test_autosize_picks_fewer_samples_when_a_rollout_is_slower(tmp_path):
    fast = _sized_engine(tmp_path, "fast", 1e-5)  # 32 x 2 steps: 0.6 ms an iteration, 4 fit in 80 ms
    slow = _sized_engine(tmp_path, "slow", 4e-4)  # 26 ms an iteration at 32: 4 do not fit
    slower = _sized_engine(tmp_path, "slower", 8e-4)
    assert fast.budget_info()["autosize"] == "kept" and fast.controller.cfg.num_samples == 32
    assert fast.controller.cfg == fast.cfg.planner
    assert 8 <= slower.planner_cfg.num_samples < slow.planner_cfg.num_samples < 32
    for e in (slow, slower):
        info = e.budget_info()
        assert info["autosize"] == "reduced" and info["mode"] == "deadline"
        assert info["num_samples"] == e.controller.cfg.num_samples and info["configured_num_samples"] == 32
        assert e.controller.cfg.iterations == 4 and info["predicted_tick_s"] <= 0.08
        # top_k scaled with the samples (8 of 32)
        assert e.controller.cfg.top_k == round(8 * e.controller.cfg.num_samples / 32)
        assert "auto-sized, reduced" in e.budget_text()
    # the chosen search is what a tick runs: every predictor batch of a plan has the chosen size
    slow.set_goal(_img(0))
    slow.backend.batches.clear()
    r = slow.step(_img(1), None, deadline_s=None)
    assert r.iterations == 4
    assert set(slow.backend.batches) == {slow.planner_cfg.num_samples}


def test_autosize_never_exceeds_the_configured_budget_and_reports_a_hopeless_machine(tmp_path):
    hopeless = _sized_engine(tmp_path, "h", 1e-2)  # 8 samples x 2 steps = 160 ms > 80 ms
    info = hopeless.budget_info()
    assert info["autosize"] == "too_slow" and (info["num_samples"], info["iterations"]) == (8, 1)


def test_fixed_budget_mode_runs_every_iteration_and_does_not_autosize(tmp_path):
    e = _sized_engine(tmp_path, "f", 1e-2, planner_fixed_budget=True)
    assert e.deadline_s is None and e.budget is None
    info = e.budget_info()
    assert info["mode"] == "fixed" and info["autosize"] == "off" and info["num_samples"] == 32
    assert "no deadline" in e.budget_text()
    e.set_goal(_img(0))
    assert e.step(_img(1), None, e.deadline_s).iterations == 4
    off = _sized_engine(tmp_path, "o", 1e-2, planner_autosize=False)  # deadline mode, sizing off
    assert off.budget_info()["autosize"] == "off" and off.controller.cfg.num_samples == 32


def test_open_engine_warns_when_even_the_smallest_search_overruns(tmp_path, monkeypatch):
    from ami_world_model.planning.budget import BudgetChoice

    def too_slow(self, image, clock=None):
        self.budget = BudgetChoice(8, 1, 0.5, 0.5, 0.08, False, True)
        return self.budget

    monkeypatch.setattr(PlanningEngine, "autosize", too_slow)
    engine, _, warnings = open_engine(_cfg(), save_tiny(tmp_path / "t"))
    engine.close()
    assert any("overruns the planning deadline" in w for w in warnings)
