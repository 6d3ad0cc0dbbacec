"""The node's logic without ROS (control/commander.py) over a real PlanningEngine: stops, holds, cadence,
live limits. The clock is the test's own, so ages are exact."""
import numpy as np
import pytest
from node_harness import save_tiny

from ami_world_model.control.commander import Commander
from ami_world_model.control.engine import PlanningEngine
from ami_world_model.node_config import PlannerNodeConfig
from ami_world_model.planning import PlannerConfig
from ami_world_model.safety import StopReason

QUIET = dict(surprise_ticks=0, no_progress_ticks=0, goal_energy_threshold=0.0)


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _img(seed):
    return np.random.default_rng(seed).random((3, 64, 64), dtype=np.float32)


def _commander(tmp_path, **kw):
    kind = kw.pop("kind", "twist")
    names = ("j1", "j2") if kind == "joint_velocity" else ("linear.x", "linear.y")
    cfg = PlannerNodeConfig(backend="torch", planner=PlannerConfig(num_samples=16, iterations=1, horizon_steps=3),
                            **QUIET, **kw)
    engine = PlanningEngine(cfg, save_tiny(tmp_path / kind, kind=kind, names=names))
    joints = engine.validate_output(cfg.output_mode, cfg.joint_names)
    clock = Clock()
    stamps = iter(range(1, 10**6))
    c = Commander(cfg, engine, joints, stamp_ns=lambda: next(stamps), now_s=clock)
    c.activate()
    c.set_goal(_img(0))
    return c, clock


def test_plans_on_a_frame_then_continues_the_plan_between_frames(tmp_path):
    c, clock = _commander(tmp_path)
    assert c.tick() == [] and c.reason is StopReason.STALE_IMAGE  # no frame yet: silence
    c.image(_img(1), stamp_ns=7, convert_s=0.0)
    first = c.tick()
    assert len(first) == 1 and first[0].motion and c.reason is None and c.planned_frame_stamp_ns == 7
    plan = c.last_step.actions  # [H, A]
    clock.t += 0.1
    again = c.tick()  # no new frame: the plan's next action (model step = 1 tick), clamped
    assert len(again) == 1 and again[0].motion and c.planned_frame_stamp_ns == 7
    assert np.allclose(again[0].values, np.clip(plan[1], np.array(first[0].values) - 0.1,
                                                np.array(first[0].values) + 0.1), atol=1e-6)
    clock.t += 0.5  # the frame is now stale: one zero, then silence
    stop = c.tick()
    assert len(stop) == 1 and not stop[0].motion and stop[0].values == [0.0, 0.0]
    assert c.tick() == [] and c.reason is StopReason.STALE_IMAGE and c.zeros_sent == 1


def test_estop_stops_now_and_holds(tmp_path):
    c, clock = _commander(tmp_path)
    c.image(_img(1), 1, 0.0)
    assert c.tick()
    out = c.set_estop(True)
    assert len(out) == 1 and not out[0].motion and c.reason is StopReason.ESTOP
    c.image(_img(2), 2, 0.0)
    assert c.tick() == [] and c.set_estop(True) == []  # a second true (latched publisher): nothing more


def test_joint_trajectory_stop_needs_a_fresh_joint_state(tmp_path):
    c, clock = _commander(tmp_path, kind="joint_velocity", output_mode="joint_trajectory")
    c.image(_img(1), 1, 0.0)
    assert c.joint_state(["j2", "j1"], [0.5, 0.25])
    move = c.tick()
    assert move and move[0].positions is not None and move[0].duration_s == pytest.approx(0.1)
    hold = c.set_estop(True)  # fresh joint state: a point holding exactly it
    assert hold[0].positions == [0.25, 0.5] and not hold[0].motion
    c.set_estop(False)
    clock.t += 0.05
    c.image(_img(2), 2, 0.0)
    assert c.tick()
    clock.t += 0.3  # joint state 0.35 s old: within max_joint_state_age_s, but too old to hold
    assert c.set_estop(True) == [], "a hold from a stale joint state drives the arm back"
    assert c.zeros_sent == 1 and not c.sup.motion_since_zero


def test_live_limits_apply_to_the_next_command(tmp_path):
    c, clock = _commander(tmp_path, max_linear_accel_mps2=50.0)
    c.apply_live(PlannerNodeConfig(**{**vars(c.cfg), "max_linear_velocity_mps": 0.001}))
    c.image(_img(1), 1, 0.0)
    out = c.tick()
    assert out and all(abs(v) <= 0.001 + 1e-12 for v in out[0].values)


def test_model_error_and_status_use_the_one_enum(tmp_path):
    c, clock = _commander(tmp_path)
    c.image(np.zeros((3, 5, 5), np.float32), 1, 0.0)  # wrong size: the engine raises
    assert c.tick() == [] and c.reason is StopReason.MODEL_ERROR and c.rejected["image"] == 1
    st = c.status()
    assert st["safety_state"] == "model_error" and st["latched"] == "" and st["goal_count"] == 1


def test_the_planner_budget_is_logged_and_reported(tmp_path):
    """The search in use (auto-sized at configure in deadline mode) is logged once and reported on ~/status
    (planner_budget) and /diagnostics (planner_*)."""
    cfg = PlannerNodeConfig(backend="torch", planner=PlannerConfig(num_samples=16, iterations=2, horizon_steps=2,
                                                                   top_k=4), **QUIET)
    engine = PlanningEngine(cfg, save_tiny(tmp_path / "t"))
    engine.warm_up()  # deadline mode, auto-sizing on: measured here, whatever it picks
    logs = []
    c = Commander(cfg, engine, [], stamp_ns=lambda: 1, log=lambda level, msg: logs.append((level, msg)),
                  now_s=Clock())
    assert logs[0][0] == "info" and logs[0][1].startswith("planner budget (deadline mode): cem ")
    b = c.status()["planner_budget"]
    assert b["mode"] == "deadline" and b["autosize"] in ("kept", "reduced", "too_slow")
    assert b["num_samples"] <= 16 and b["iterations"] <= 2 and b["deadline_s"] == pytest.approx(0.08)
    assert b["measured_iteration_s"] > 0 and b["predicted_tick_s"] > 0
    d = c.diagnostic_values()
    assert d["planner_mode"] == "deadline" and d["planner_num_samples"] == str(b["num_samples"])
    assert d["planner_autosize"] == b["autosize"] and float(d["planner_deadline_s"]) == pytest.approx(0.08)
    fixed = PlannerNodeConfig(backend="torch", planner_fixed_budget=True, **QUIET)
    f = Commander(fixed, PlanningEngine(fixed, save_tiny(tmp_path / "f")), [], stamp_ns=lambda: 1, now_s=Clock())
    assert f.diagnostic_values()["planner_deadline_s"] == "none"
    assert f.status()["planner_budget"]["autosize"] == "off"
