"""The safety state machines, without ROS: watchdog, one-zero-then-silence, latches, clamps, inputs."""
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ami_world_model import safety as s
from ami_world_model.config import ConfigError
from ami_world_model.node_config import PlannerNodeConfig, parameter_table, resolve_checkpoint


def _sup_cfg(require_joint_states: bool = False, **node_fields) -> s.SupervisorConfig:
    """Built the one way the node builds it: from PlannerNodeConfig (which holds every default)."""
    return s.SupervisorConfig.from_node(PlannerNodeConfig(**node_fields), require_joint_states)


def _ready(cfg=None) -> s.SafetySupervisor:
    sup = s.SafetySupervisor(cfg or _sup_cfg(max_image_age_s=0.5))
    sup.set_goal(True)
    sup.image_received(0.0)
    return sup


def test_plans_only_with_fresh_image_and_goal():
    sup = s.SafetySupervisor(_sup_cfg(max_image_age_s=0.5))
    assert sup.decide(0.0) == s.Decision(s.SILENT, s.StopReason.STALE_IMAGE)
    sup.image_received(0.0)
    assert sup.decide(0.1) == s.Decision(s.SILENT, s.StopReason.NO_GOAL)
    sup.set_goal(True)
    assert sup.decide(0.1).action == s.PLAN


def test_stale_image_one_zero_then_silence_then_resume():
    sup = _ready()
    sup.commanded(nonzero=True)
    assert sup.decide(0.4).action == s.PLAN
    assert sup.decide(0.6) == s.Decision(s.ZERO, s.StopReason.STALE_IMAGE)
    assert sup.decide(0.7) == s.Decision(s.SILENT, s.StopReason.STALE_IMAGE)
    assert sup.decide(5.0).action == s.SILENT
    sup.image_received(5.0)
    assert sup.decide(5.1).action == s.PLAN
    assert sup.stops == {s.StopReason.STALE_IMAGE: 1}


def test_required_joint_states_are_watched():
    sup = _ready(_sup_cfg(require_joint_states=True, max_joint_state_age_s=0.2))
    assert sup.blocking_reason(0.1) == s.StopReason.STALE_JOINTS
    sup.joints_received(0.1)
    assert sup.blocking_reason(0.2) is None
    assert sup.blocking_reason(0.4) == s.StopReason.STALE_JOINTS


def test_estop_is_latched_until_false_and_outranks_everything():
    sup = _ready()
    sup.commanded(nonzero=True)
    sup.set_estop(True)
    sup.set_enabled(False)
    assert sup.decide(0.1) == s.Decision(s.ZERO, s.StopReason.ESTOP)
    assert sup.decide(0.2) == s.Decision(s.SILENT, s.StopReason.ESTOP)
    sup.set_estop(False)
    assert sup.decide(0.2) == s.Decision(s.SILENT, s.StopReason.DISABLED)
    sup.set_enabled(True)
    assert sup.decide(0.2).action == s.PLAN


def test_goal_reached_latches_until_new_goal():
    sup = _ready(_sup_cfg(goal_energy_threshold=0.1, goal_reached_ticks=3, no_progress_ticks=0))
    sup.commanded(nonzero=True)
    assert sup.after_plan(0.05, 0.04, 0.05, None).action == s.PLAN
    assert sup.after_plan(0.5, 0.04, 0.05, None).action == s.PLAN  # resets the count
    for _ in range(2):
        assert sup.after_plan(0.05, 0.04, 0.05, None).action == s.PLAN
    assert sup.after_plan(0.05, 0.04, 0.05, None) == s.Decision(s.ZERO, s.StopReason.GOAL_REACHED)
    assert sup.decide(0.1) == s.Decision(s.SILENT, s.StopReason.GOAL_REACHED)
    sup.set_goal(True)
    assert sup.decide(0.1).action == s.PLAN


def test_sustained_surprise_latches_unsure_and_reenable_clears():
    sup = _ready(_sup_cfg(surprise_ratio_threshold=3.0, surprise_ticks=3, no_progress_ticks=0))
    sup.commanded(nonzero=True)
    assert sup.after_plan(1.0, 0.5, 1.0, 10.0).action == s.PLAN
    assert sup.after_plan(1.0, 0.5, 1.0, 2.0).action == s.PLAN  # one calm tick resets
    assert sup.after_plan(1.0, 0.5, 1.0, 10.0).action == s.PLAN
    assert sup.after_plan(1.0, 0.5, 1.0, float("nan")).action == s.PLAN  # NaN surprise counts as surprise
    assert sup.after_plan(1.0, 0.5, 1.0, 10.0) == s.Decision(s.ZERO, s.StopReason.UNSURE_SURPRISE)
    assert sup.blocking_reason(0.1) == s.StopReason.UNSURE_SURPRISE
    sup.set_enabled(False)
    sup.set_enabled(True)
    assert sup.blocking_reason(0.1) is None


def test_no_progress_latches_unsure():
    sup = _ready(_sup_cfg(no_progress_ticks=4, no_progress_margin=0.1, surprise_ticks=0))
    for _ in range(3):
        assert sup.after_plan(1.0, 0.95, 1.0, None).action == s.PLAN  # 5 % better < 10 % margin
    assert sup.after_plan(1.0, 0.5, 1.0, None).action == s.PLAN  # progress resets
    for _ in range(3):
        sup.after_plan(1.0, 1.2, 1.0, None)
    d = sup.after_plan(1.0, 1.0, 1.0, None)
    assert d.reason == s.StopReason.UNSURE_NO_PROGRESS and d.action == s.SILENT  # no motion went out: silent


def test_non_finite_energy_never_commands():
    sup = _ready(_sup_cfg(no_progress_ticks=0))
    assert sup.after_plan(1.0, float("nan"), 1.0, None).action != s.PLAN


@given(v=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=6),
       data=st.data())
@settings(max_examples=200, deadline=None)
def test_clamp_respects_velocity_and_accel(v, data):
    n = len(v)
    prev = data.draw(st.lists(st.floats(-1, 1), min_size=n, max_size=n))
    vmax = data.draw(st.lists(st.floats(0, 2), min_size=n, max_size=n))
    amax = data.draw(st.lists(st.floats(0, 10), min_size=n, max_size=n))
    lim = s.SafetyLimits(vmax, amax)
    out = s.clamp_command(v, prev, 0.1, lim)
    for x, p, vm, am in zip(out, prev, vmax, amax):
        assert math.isfinite(x)
        # within the accel band around prev, and within +-vmax unless prev itself was outside it
        assert abs(x - p) <= am * 0.1 + 1e-9
        if abs(p) <= vm:
            assert abs(x) <= vm + 1e-9


def test_clamp_examples():
    lim = s.SafetyLimits([0.1, 0.1], [1.0, 1.0])
    assert s.clamp_command([0.5, -0.5], [0.1, -0.1], 0.1, lim) == pytest.approx([0.1, -0.1])
    assert s.clamp_command([0.1, 0.0], [0.0, 0.0], 0.05, lim) == pytest.approx([0.05, 0.0])
    with pytest.raises(ValueError):
        s.clamp_command([0.1], [0.0, 0.0], 0.1, lim)


def test_joint_positions_checked():
    assert s.check_joint_positions(["a", "b"], [1.0, 2.0], ["b", "a"]) == [2.0, 1.0]
    for names, pos, req, msg in [([], [], ["a"], "empty"), (["a"], [1.0, 2.0], [], "names"),
                                 (["a"], [1.0], ["b"], "lacks"), (["a"], [float("nan")], ["a"], "non-finite")]:
        with pytest.raises(s.InputError, match=msg):
            s.check_joint_positions(names, pos, req)


def test_throttle_and_rate_meter():
    t = s.Throttle(1.0)
    assert t.ready("x", 0.0) and not t.ready("x", 0.5) and t.ready("y", 0.5) and t.ready("x", 1.0)
    r = s.RateMeter(tau_s=0.1)
    for i in range(50):
        r.tick(i / 30.0)
    assert r.current(49 / 30.0) == pytest.approx(30.0, rel=0.05)
    assert r.current(49 / 30.0 + 1.0) < 1.1  # decays when frames stop


def test_node_config_is_strict_and_ranged(tmp_path):
    cfg = PlannerNodeConfig.from_params({"control_rate_hz": 20, "output_mode": "joint_trajectory"})
    assert cfg.control_period_s == pytest.approx(0.05)
    with pytest.raises(ConfigError, match="unknown key"):
        PlannerNodeConfig.from_params({"control_rate": 20})
    with pytest.raises(ConfigError, match="control_rate_hz"):
        PlannerNodeConfig(control_rate_hz=0.0)
    with pytest.raises(ConfigError, match="output_mode"):
        PlannerNodeConfig(output_mode="twist")
    names = [row.name for row in parameter_table()]
    assert "checkpoint" in names and len(names) == len(set(names))
    assert all(row.description for row in parameter_table()), "every parameter has a description"
    # every PlannerConfig field is a node parameter planner.<field>, with the planner's default
    from dataclasses import fields

    from ami_world_model.planning import PlannerConfig

    planner = {row.name: row.default for row in parameter_table() if row.name.startswith("planner.")}
    assert planner == {f"planner.{f.name}": getattr(PlannerConfig(), f.name) for f in fields(PlannerConfig)}
    assert (planner["planner.num_samples"], planner["planner.iterations"], planner["planner.top_k"]) == (64, 4, 16)
    assert PlannerNodeConfig.from_params({"planner.num_samples": 32, "planner.top_k": 8}).planner.top_k == 8
    for old in ("planner_num_samples", "planner_method"):
        with pytest.raises(ConfigError, match="unknown key"):
            PlannerNodeConfig.from_params({old: 1})
    with pytest.raises(ConfigError, match="num_samples"):
        PlannerNodeConfig.from_params({"planner.num_samples": 1})


def test_supervisor_defaults_are_the_node_defaults():
    node = PlannerNodeConfig()
    sup = s.SupervisorConfig.from_node(node, False)
    assert sup.goal_energy_threshold == node.goal_energy_threshold == 0.006
    assert sup.max_image_age_s == node.max_image_age_s and sup.no_progress_ticks == node.no_progress_ticks


def test_stop_reasons_are_one_enum():
    R = s.StopReason
    assert R.NON_FINITE_ENERGY.severity == "warn", "a non-finite energy stop must show as WARN"
    assert R.MODEL_ERROR.severity == "warn" and R.CONFIGURE_FAILED.severity == "error"
    assert R.GOAL_REACHED.severity == "ok" and R.INACTIVE.severity == "ok"
    assert {r for r in R if r.latches} == {R.GOAL_REACHED, R.UNSURE_SURPRISE, R.UNSURE_NO_PROGRESS}
    assert not R.MODEL_ERROR.latches
    assert f"{R.ESTOP}" == "estop" and R.ESTOP == "estop"
    sup = _ready(_sup_cfg(no_progress_ticks=0))
    assert sup.after_plan(1.0, float("nan"), 1.0, None).reason is R.NON_FINITE_ENERGY


def test_checkpoint_resolution_order(tmp_path):
    share, repo, cwd = (tmp_path / d for d in ("share", "repo", "cwd"))
    for base in (repo, cwd):
        (base / "models").mkdir(parents=True)
        (base / "models" / "m.v1.json").write_text("{}")
    assert resolve_checkpoint("models/m.v1", share, repo, cwd) == repo / "models" / "m.v1"
    assert resolve_checkpoint(str(cwd / "models" / "m.v1.json")) == cwd / "models" / "m.v1"
    with pytest.raises(FileNotFoundError, match="tried"):
        resolve_checkpoint("models/none", share, repo, cwd)
