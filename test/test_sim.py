"""The simulated cell: model, rendering, the Servo-like twist interface, the JTC-like interface, limits."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ami_world_model.config import ConfigError, from_dict
from ami_world_model.sim.cell import CellState, SimCell, rollout
from ami_world_model.sim.config import SimConfig


def test_mjcf_loads_with_arm_block_camera(cell):
    assert cell.joint_names == ["shoulder", "elbow", "lift"]
    assert cell.model.nu == 3  # one velocity actuator per arm joint
    assert cell.model.camera("overhead").id >= 0
    lim = cell.joint_limits()
    assert lim.shape == (3, 2) and np.all(lim[:, 0] < lim[:, 1])
    assert cell.action_spec().names == ["linear.x", "linear.y"] and cell.action_spec().dt_s == 0.1


@pytest.mark.parametrize("hw", [(64, 64), (96, 128)])
def test_render_returns_configured_size(hw):
    c = SimCell(SimConfig(image_height=hw[0], image_width=hw[1]))
    img = c.render()
    c.close()
    assert img.shape == (hw[0], hw[1], 3) and img.dtype == np.uint8
    assert img.std() > 10  # a real scene, not a blank buffer


def test_block_and_tool_are_visible_at_64px(cell):
    cell.reset(seed=3, task="push")
    img = cell.render().astype(int)
    red = (img[..., 0] > 150) & (img[..., 1] < 90) & (img[..., 2] < 90)
    yellow = (img[..., 0] > 180) & (img[..., 1] > 150) & (img[..., 2] < 90)
    assert red.sum() >= 15, "block should cover several pixels"
    assert yellow.sum() >= 6, "tool cap should be visible"


@pytest.mark.parametrize("seed,v", [(1, (0.08, 0.0)), (2, (0.0, -0.08)), (3, (-0.05, 0.05)), (4, (0.06, 0.07))])
def test_twist_moves_tool_along_command(cell, seed, v):
    cell.reset(seed=seed, task="reach")
    cell.set_state(CellState(cell.ik(0.22, 0.0), cell.get_state().block + np.array([0, 0.3, 0, 0, 0, 0, 0])))
    p0 = cell.ee_position()
    for _ in range(4):
        cell.apply_twist(*v)
        cell.step()
    moved = (cell.ee_position() - p0)[:2]
    want = np.array(v) * 0.4
    # Within 10 % of the commanded displacement (velocity actuator lag at the start), straight line.
    assert np.linalg.norm(moved - want) <= 0.1 * np.linalg.norm(want)
    assert abs(cell.ee_position()[2] - p0[2]) < 2e-3  # planar commands keep the tool height


def test_one_action_moves_a_few_pixels(cell):
    """A 0.1 m/s x 0.1 s step is visible at 64x64: the tool cap moves 1.5-4 px."""
    cell.reset(seed=5)
    cell.set_state(CellState(cell.ik(0.2, 0.05), cell.get_state().block + np.array([0, -0.3, 0, 0, 0, 0, 0])))

    def cap_centre():
        img = cell.render().astype(int)
        ys, xs = np.nonzero((img[..., 0] > 180) & (img[..., 1] > 150) & (img[..., 2] < 90))
        return np.array([ys.mean(), xs.mean()])

    c0 = cap_centre()
    cell.apply_twist(0.1, 0.0)
    cell.step()
    cell.step()  # two steps (2 cm) so the lag of the first does not matter; per step = half
    assert 1.5 <= np.linalg.norm(cap_centre() - c0) / 2 <= 4.0


def test_joint_speed_limit_holds_near_singularity(cell):
    # Nearly stretched out: tool speed needs huge joint speeds; they must be scaled to the limit.
    cell.set_state(CellState(np.array([0.0, -0.25, 0.0]), np.array([0.2, 0.3, 0.02, 1, 0, 0, 0])))
    vmax = np.array(cell.config.max_joint_speed)
    for _ in range(20):
        cell.apply_twist(0.1, 0.0)
        cell.step(cell.config.servo_dt_s)
        assert np.all(np.abs(cell.joint_velocities()) <= vmax * 1.1)
        assert np.all(np.abs(cell.data.ctrl[:3]) <= vmax + 1e-9)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.floats(-0.3, 0.3), st.floats(-0.3, 0.3)), min_size=5, max_size=25), st.integers(0, 50))
def test_limits_hold_for_any_twists(cell, actions, seed):
    cell.reset(seed=seed)
    lim = cell.joint_limits()
    x0, x1, y0, y1 = cell.config.workspace
    for a in actions:
        cell.apply_twist(*a)
        cell.step()
        q = cell.joint_positions()
        assert np.all(q >= lim[:, 0] - 1e-3) and np.all(q <= lim[:, 1] + 1e-3)
        ee = cell.ee_position()
        assert x0 - 0.01 <= ee[0] <= x1 + 0.01 and y0 - 0.01 <= ee[1] <= y1 + 0.01  # the virtual fence


def test_joint_trajectory_reaches_target_and_clamps_limits(cell):
    cell.reset(seed=6)
    target = cell.ik(0.28, -0.05)
    cell.apply_joint_trajectory([target], [0.5])
    for _ in range(8):
        cell.step()
    assert np.allclose(cell.joint_positions(), target, atol=0.01)
    assert np.linalg.norm(cell.ee_position()[:2] - [0.28, -0.05]) < 0.005
    lim = cell.joint_limits()
    cell.apply_joint_trajectory([lim[0, 1] + 1.0, -1.0, 0.0], 0.3)  # beyond the shoulder limit: clamped
    for _ in range(10):
        cell.step()
    assert cell.joint_positions()[0] <= lim[0, 1]
    with pytest.raises(ValueError):
        cell.apply_joint_trajectory([[0.0, -1.0]], [1.0])  # wrong number of joints


def test_reset_is_deterministic_and_randomisation_changes_only_looks():
    a, b = SimCell(), SimCell(SimConfig(randomize=True))
    for task in ("reach", "push"):
        img_a, img_b = a.reset(seed=11, task=task), b.reset(seed=11, task=task)
        assert np.allclose(a.get_state().joints, b.get_state().joints)
        assert np.allclose(a.goal.ee_position, b.goal.ee_position)
        assert np.abs(img_a.astype(int) - img_b.astype(int)).mean() > 1.0
        again = a.reset(seed=11, task=task)
        assert np.array_equal(again, img_a)
    a.close()
    b.close()


def test_goal_success_and_distance(cell):
    for task in ("reach", "push"):
        cell.reset(seed=21, task=task)
        goal = cell.goal
        assert goal.task == task and goal.image.shape == (64, 64, 3)
        assert not cell.success() and cell.distance_to_goal() > 0.02
        start = cell.get_state()
        cell.set_state(goal.state)
        assert cell.success() and cell.distance_to_goal() < 1e-6
        cell.set_state(start)
    cell.set_state(CellState(cell.ik(0.22, 0.0), cell.get_state().block + np.array([0, 0.3, 0, 0, 0, 0, 0])))
    cell.apply_twist(0.05, 0.0)
    cell.step()
    before = (cell.time, cell.ee_position(), cell.joint_velocities())
    new = cell.sample_goal("reach", np.random.default_rng(0))
    assert cell.goal is new and cell.ik(*new.ee_position[:2]) is not None
    # Sampling a goal mid-motion leaves the scene, its velocities and the active command untouched.
    assert cell.time == before[0] and np.allclose(cell.ee_position(), before[1])
    assert np.allclose(cell.joint_velocities(), before[2])
    cell.step()
    assert cell.ee_position()[0] - before[1][0] > 0.003


def test_rollout_is_deterministic(cell):
    cell.reset(seed=8, task="push")
    start = cell.get_state()
    acts = [(0.05, 0.02)] * 6
    r1 = rollout(cell, start, acts)
    r2 = rollout(cell, start, acts)
    assert r1.images.shape == (7, 64, 64, 3) and r1.ee_positions.shape == (7, 3)
    assert np.array_equal(r1.images, r2.images) and np.allclose(r1.block_positions, r2.block_positions)


def test_bad_input_is_safe_or_a_clear_error(cell):
    cell.reset(seed=1)
    cell.apply_twist(float("nan"), 0.1)
    p0 = cell.ee_position()
    cell.step()
    assert np.linalg.norm(cell.ee_position() - p0) < 1e-3  # non-finite -> stop
    with pytest.raises(ValueError):
        cell.reset(seed=1, task="stack")
    with pytest.raises(ValueError):
        cell.set_state(CellState(np.zeros(2), np.zeros(7)))
    with pytest.raises(ConfigError):
        from_dict(SimConfig, {"image_hieght": 64})
    with pytest.raises(ConfigError):
        SimConfig(servo_dt_s=0.5)
