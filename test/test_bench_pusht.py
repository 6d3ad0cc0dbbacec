"""Smoke test of the PushT benchmark (benchmarks/pusht): 2 short episodes into a bag (frames, commands and the
agent / block / block-tip poses), one training step each for ours (`ami-wm train`, with a read-out head from the
poses) and the peer (LeWM), a 1-episode evaluation per planner that writes results.json.

The benchmark runs in its own venv (`make bench-pusht-setup`, benchmarks/pusht/README.md), because its extra
(stable-worldmodel, pymunk, pygame, transformers) is not part of the core's requirements; the test skips, with
that reason, only when that venv is absent.
"""
from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "pusht"
BENCH_PY = BENCH / ".venv" / "bin" / "python"


def _bench_module(name: str):
    """``pusht_bench.<name>``, imported with the benchmark folder on sys.path only for the import."""
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module(f"pusht_bench.{name}")
    finally:
        sys.path.remove(str(BENCH))


class _PointsEnv:
    """Stands in for PushT in the metric's arithmetic only: three points, the first moved by the action."""

    def __init__(self) -> None:
        self.unwrapped = self
        self.points = np.zeros((3, 2))

    def reset(self, seed=None, options=None):
        self.points = np.asarray(options["state"], dtype=np.float64).reshape(3, 2).copy()
        return None, {"goal": None}

    def render(self):
        return self.points.copy()

    def step(self, action):
        self.points[0] += action

    def _get_obs(self):
        return self.points.reshape(-1).copy()


class _PointsModel:
    """A model whose latent is the points themselves; ``moves`` says whether its dynamics move the first one."""

    def __init__(self, moves: bool) -> None:
        self.moves = moves

    def encode(self, frame):
        import torch

        return torch.as_tensor(frame, dtype=torch.float32).reshape(1, 6)

    def state0(self, z, obs=None):
        from types import SimpleNamespace

        return SimpleNamespace(latest=z[None])

    def dynamics(self, state, a):
        from types import SimpleNamespace

        z = state.latest.clone()
        if self.moves:
            z[:, 0, :2] += 5 * a  # one block = 5 env steps of the held action
        return SimpleNamespace(latest=z)

    def readout_px(self, z, pose_scale):
        return z.reshape(-1) / pose_scale


def test_predicted_readout_error_is_zero_for_a_perfect_model_and_the_copy_baseline_for_a_still_one():
    ev = _bench_module("evaluate")
    episodes = [{"start": np.arange(6.0) * (i + 1), "goal": None} for i in range(3)]
    plan = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0], [-3.0, 0.0]])

    def run(moves):
        return ev.predicted_readout_error_px(_PointsModel(moves), _PointsEnv(), episodes, lambda f, e, i: plan,
                                            lambda env: env.points.copy(), 1.0)

    perfect, still = run(True), run(False)
    assert perfect["episodes"] == 3 and np.allclose(perfect["predicted_px_per_block"], 0.0)
    np.testing.assert_allclose(still["predicted_px_per_block"], still["copy_px_per_block"])
    # the agent's copy error is how far the plan has moved it: 5, 5*sqrt(5), ... px; the other points never move
    moved = np.linalg.norm(np.cumsum(5 * plan, axis=0), axis=1)
    np.testing.assert_allclose(np.asarray(still["copy_px_per_block"])[:, 0], moved, atol=0.05)
    assert np.allclose(np.asarray(still["copy_px_per_block"])[:, 1:], 0.0)


class _ReadoutAdapter:
    """Ours' planning adapter reduced to its arithmetic: the "latent" of a frame is the read-out itself (the
    three points, metres), the head moves the agent by the action, the energy is the summed point distance."""

    def __init__(self) -> None:
        self.first_states = []

    def encode(self, frame):
        import torch

        return torch.as_tensor(frame, dtype=torch.float32).reshape(1, 6)

    def positions(self, z):
        return z[0].clone()

    def proprio_state(self, obs):
        return None

    def pose_state0(self, z, obs=None):
        from ami_world_model.planning.dynamics import PoseState

        return PoseState(self.positions(z)[None], None)

    def pose_dynamics(self, state, a):
        from ami_world_model.planning.dynamics import PoseState

        if not self.first_states:
            self.first_states.append(state.positions[0].clone())
        p = state.positions.clone()
        p[:, :2] += a
        return PoseState(p, None)

    def pose_energy(self, state, goal):
        return (state.positions - goal).reshape(state.positions.shape[0], 3, 2).norm(dim=-1).sum(dim=1)


def test_pose_planner_takes_the_agent_from_the_joint_state_and_the_block_from_the_image():
    ev = _bench_module("evaluate")
    seen = np.array([0.10, 0.10, 0.20, 0.20, 0.20, 0.26], dtype=np.float32)  # what the "read-out" sees
    obs = np.array([300.0, 50.0, 200.0, 200.0, 0.0, 0.0, 0.0])  # env px: the agent's true position differs
    goal_frame = np.array([0.30, 0.30, 0.25, 0.20, 0.25, 0.26], dtype=np.float32)
    goal_state = np.array([120.0, 400.0, 250.0, 200.0, 0.0, 0.0, 0.0])

    class Env:
        unwrapped = SimpleNamespace(_get_obs=lambda: obs)

    def joints(o):
        return np.asarray(o[:2]) * 1e-3

    cfg = ev.protocol_planner(num_samples=8, iterations=1, top_k=2)
    for joint_position, goal_joints in ((None, False), (joints, False), (joints, True)):
        adapter = _ReadoutAdapter()
        planner = ev.PosePlanner(adapter, cfg, [-1, -1], [1, 1], joint_position=joint_position,
                                 goal_joint_position=goal_joints)
        planner.begin(goal_frame, goal_state)
        planner.plan(seen, Env())
        start, goal = adapter.first_states[0].numpy(), planner.goal.numpy()
        want_agent = seen[:2] if joint_position is None else [0.3, 0.05]
        np.testing.assert_allclose(start[:2], want_agent, atol=1e-6)
        np.testing.assert_allclose(start[2:], seen[2:], atol=1e-6)  # the block is always the read-out's
        np.testing.assert_allclose(goal[:2], [0.12, 0.4] if goal_joints else goal_frame[:2], atol=1e-6)
        np.testing.assert_allclose(goal[2:], goal_frame[2:], atol=1e-6)
    with pytest.raises(ValueError, match="goal_joint_position needs joint_position"):
        ev.PosePlanner(_ReadoutAdapter(), cfg, [-1, -1], [1, 1], goal_joint_position=True)


def test_wilson_interval_matches_known_values():
    ev = _bench_module("evaluate")
    lo, hi = ev.wilson(45, 50)
    assert lo == pytest.approx(0.7864, abs=1e-3) and hi == pytest.approx(0.9565, abs=1e-3)
    assert ev.wilson(0, 50)[0] == 0.0 and ev.wilson(0, 50)[1] == pytest.approx(0.0713, abs=1e-3)
    assert ev.wilson(50, 50)[1] == 1.0


def test_protocol_constants_and_episode_selection():
    ev = _bench_module("evaluate")
    assert (ev.BUDGET_STEPS, ev.FRAMESKIP, ev.HORIZON_BLOCKS) == (50, 5, 5)
    assert ev.PROTOCOL_CEM == {"num_samples": 300, "iterations": 30, "top_k": 30}
    states = np.arange(3 * 61 * 7, dtype=np.float64).reshape(3, 61, 7)
    eps = ev.episodes_from_heldout({"states": states}, 5, 25, seed=1)
    for ep in eps:
        assert 0 <= ep["t0"] <= 60 - 25
        np.testing.assert_array_equal(ep["goal"], states[ep["traj"], ep["t0"] + 25])
    with pytest.raises(ValueError):
        ev.episodes_from_heldout({"states": states}, 1, 61, seed=0)


def _pid_after(seconds):
    def job():
        import time

        time.sleep(seconds)
        return os.getpid()
    return job


def test_run_jobs_shares_jobs_over_forked_workers_and_keeps_their_order():
    jobs_mod = _bench_module("jobs")
    jobs = [(f"job{i}", _pid_after(0.3)) for i in range(4)]
    out = jobs_mod.run_jobs(jobs, workers=2)
    assert list(out) == ["job0", "job1", "job2", "job3"]
    pids = set(out.values())
    assert os.getpid() not in pids and len(pids) == 2  # two workers, neither of them this process
    # one worker (or one job): in this process, in order
    assert set(jobs_mod.run_jobs(jobs, workers=1).values()) == {os.getpid()}
    assert jobs_mod.run_jobs([("only", lambda: 7)], workers=2) == {"only": 7}


def test_run_jobs_results_do_not_depend_on_the_worker_count():
    jobs_mod = _bench_module("jobs")

    def seeded(seed):
        def job():
            import torch

            g = torch.Generator().manual_seed(seed)
            return {"sum": float(torch.randn(64, 64, generator=g).sum()), "threads": torch.get_num_threads()}
        return job

    jobs = [(f"s{i}", seeded(i)) for i in range(5)]
    one, two = jobs_mod.run_jobs(jobs, workers=1), jobs_mod.run_jobs(jobs, workers=2, threads=1)
    assert [v["sum"] for v in one.values()] == [v["sum"] for v in two.values()]
    assert {v["threads"] for v in two.values()} == {1}  # each worker at the thread count it was given


def test_run_jobs_reports_a_failing_job_and_a_dead_worker_by_name():
    jobs_mod = _bench_module("jobs")

    def boom():
        raise ValueError("bad row")

    with pytest.raises(jobs_mod.JobError, match=r"(?s)'broken'.*bad row"):
        jobs_mod.run_jobs([("fine", lambda: 1), ("broken", boom)], workers=2)

    def die():
        os._exit(3)  # a worker killed mid-job (a segfault, the OOM killer): no result, no traceback

    with pytest.raises(jobs_mod.JobError, match="died before it returned a result for dies"):
        jobs_mod.run_jobs([("dies", die), ("fine", lambda: 1)], workers=2, poll_s=0.2)
    with pytest.raises(ValueError, match="unique"):
        jobs_mod.run_jobs([("a", lambda: 1), ("a", lambda: 2)], workers=2)


@pytest.mark.skipif(not BENCH_PY.exists(), reason="PushT benchmark venv missing: run `make bench-pusht-setup`")
def test_bench_pusht_smoke(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, PUSHT_BENCH_SIZE="small")
    proc = subprocess.run([str(BENCH_PY), str(BENCH / "run.py"), "--out", str(out), "--threads", "1"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads((out / "results.json").read_text())

    # Data: 2 episodes x 30 frames, and the bag reads through the core's own reader with its default topics.
    assert res["data"]["episodes"] == 2 and res["data"]["frames"] == 60
    from ami_world_model.data.bags import BagSpec, load_episodes

    data = load_episodes(out / "bag", BagSpec(image_size=[64, 64]))
    assert len(data.episodes) == 2
    assert all(len(e.images) == 30 and e.images.shape[1:] == (64, 64, 3) for e in data.episodes)
    acts = np.concatenate([e.actions for e in data.episodes])
    assert acts.shape[1] == 2 and np.all(np.abs(acts) <= 1.0 + 1e-6)

    # Poses: one PoseStamped per frame on each topic, read as targets in env px / 1000; the tip point is fixed on
    # the T, 60 px from the block's origin, so its distance to the block pose is 0.06 on every frame.
    topics = ["/agent_pose", "/block_pose", "/block_tip_pose"]
    assert res["data"]["pose_topics"] == topics
    posed = load_episodes(out / "bag", BagSpec(image_size=[64, 64], pose_topics=topics))
    assert posed.target_names == ["agent.x", "agent.y", "block.x", "block.y", "block_tip.x", "block_tip.y"]
    tg = np.concatenate([e.targets for e in posed.episodes])  # [60, 6]
    assert tg.shape == (60, 6) and np.all((tg > 0.0) & (tg < 0.512))  # inside the 512 px arena
    np.testing.assert_allclose(np.linalg.norm(tg[:, 4:6] - tg[:, 2:4], axis=1), 0.06, atol=1e-4)
    assert np.ptp(tg[:, 0]) > 0.0  # the agent moves

    # One training step each: ours through `ami-wm train`, the peer through our loop.
    assert res["ours"]["encoder_steps"] == 1 and res["ours"]["predictor_steps"] == 1
    assert (out / "ours" / "wm.safetensors").exists()
    # ... with a read-out head over the three poses, which ours plans with ("auto" -> the read-out distance).
    assert res["ours"]["pose_topics"] == topics and res["ours"]["readout_steps"] == 1
    wm = json.loads((out / "ours" / "wm.json").read_text())
    readout = wm["config"]["readout"] if "config" in wm else wm["readout"]
    assert readout["names"] == ["agent.x", "agent.y", "block.x", "block.y", "block_tip.x", "block_tip.y"]
    eq = res["energy_quality"]
    assert eq["ours"]["energy"] == "readout" and eq["ours_l1"]["energy"] == "l1"
    ro = eq["ours_readout_px"]
    assert ro["frames"] == 56 and all(np.isfinite(ro[k]) and ro[k] >= 0 for k in ("agent_px", "block_px"))
    # The small size trains with every patch a token (--pool 1), no pull (--readout-keep-weight 0) and the
    # read-out's learning rate and batch of the full size (--readout-lr 1e-3, --readout-batch-size 32).
    assert res["ours"]["pool"] == 1 and wm["config"]["encoder"]["pool"] == 1
    assert res["ours"]["readout_keep_weight"] == 0.0
    assert res["ours"]["readout_lr"] == 1e-3 == wm["config"]["readout"]["metrics"]["lr"]
    assert res["ours"]["readout_batch_size"] == 32 == wm["config"]["readout"]["metrics"]["batch_size"]
    # ... and sizes its predictor (--predictor-width 32 --predictor-depth 1)
    assert (res["ours"]["predictor_width"], res["ours"]["predictor_depth"]) == (32, 1)
    assert (wm["config"]["predictor"]["embed_dim"], wm["config"]["predictor"]["depth"]) == (32, 1)
    # The predictor's read-out under held actions, per block, beside "nothing moves".
    for plans in ("random_plans", "node_cem_plans"):
        pr = eq["ours_predicted_readout_px"][plans]
        assert pr["episodes"] == 1 and pr["points"] == ["agent", "block", "block_tip"]
        for key in ("predicted_px_per_block", "copy_px_per_block"):
            arr = np.asarray(pr[key])
            assert arr.shape == (5, 3) and np.all(np.isfinite(arr)) and np.all(arr >= 0)
    assert res["peers"]["lewm"]["steps"] == 1 and res["peers"]["lewm"]["params"] > 1_000_000
    # Ours reads the agent's joint velocity as its state and has the pose-dynamics head in the block's frame.
    assert wm["config"]["state"]["names"] == ["agent_x", "agent_y"]
    assert (res["ours"]["state_topic"], res["ours"]["state_field"]) == ("/joint_states", "velocity")
    pdc = wm["config"]["pose_dynamics"]
    assert pdc["frame"] == ["block", "block_tip"] and pdc["substeps"] == 5 and pdc["metrics"]["steps"] == 2
    # ... and sees the arena's four walls, read from the env, in the poses' units
    assert len(pdc["walls"]) == 4 and res["ours"]["pose_dynamics_walls"] == pdc["walls"]
    # (the env's segments at 5 and 506 px, radius 2: surfaces at 7 and 504 px, normals into the arena)
    for x, y, nx, ny in pdc["walls"]:
        at = x if nx else y
        assert abs(nx) + abs(ny) == 1.0 and at == pytest.approx(0.007 if nx + ny > 0 else 0.504, abs=1e-9)
    assert set(pdc["metrics"]["val_step_error_mm"]["predicted"]) == {"agent", "block", "block_tip"}

    # The agent's joint state (position, velocity; x POSE_SCALE) per frame, and the state-model bound on it.
    js = load_episodes(out / "bag", BagSpec(image_size=[64, 64], state_topic="/joint_states",
                                            state_joints=["agent_x", "agent_y"]))
    np.testing.assert_allclose(np.concatenate([e.states for e in js.episodes]), tg[:, 0:2], atol=1e-6)
    sm = res["state_model"]
    assert sm["config"]["steps"] == 2 and sm["transitions"] + sm["val_transitions"] == 2 * (30 - 5)
    assert set(sm["val_error_px"]) == {"agent", "block", "block_tip"}
    assert sm["val_no_motion_px"]["agent"] > 0.0

    # A 1-episode evaluation per planner, with the protocol's fields.
    names = set(res["planners"])
    assert {"ours (pose dynamics; protocol CEM)", "ours (pose dynamics; node budget)",
            "ours (latent predictor; node budget)", "lewm (peer, protocol CEM)",
            "ours' pose dynamics from the true state (bound; protocol CEM)",
            "ours' pose dynamics from the true state (bound; node budget)",
            "oracle (CEM on the simulator)", "random",
            "state model (true state, learned dynamics; protocol CEM)",
            "state model (true state, learned dynamics; node budget)",
            "our perception + state model (protocol CEM)", "our perception + state model (node budget)",
            "ours + the agent's joint position at the start (pose dynamics; protocol CEM)"} <= names
    for row in res["planners"].values():
        r = row["offsets"]["25"]
        assert r["episodes"] == 1 and r["successes"] in (0, 1)
        lo, hi = r["wilson95"]
        assert 0.0 <= lo <= r["success"] <= hi <= 1.0
        ep = r["per_episode"][0]
        assert 1 <= ep["steps"] <= 50 and (ep["success"] or ep["steps"] == 50)
    assert res["protocol"]["budget_env_steps"] == 50 and res["protocol"]["horizon_blocks"] == 5
    # the CPU's speed beside the minutes (a full run's time, and the peer's budget, scale with it)
    assert res["machine"]["threads"] == 1 and res["machine"]["matmul_gflops"] > 0.0
    # the rows were shared out over two forked workers (the default), and came back in the table's order
    assert res["machine"]["eval_workers"] == 2 and res["machine"]["eval_threads_per_worker"] == 1
    assert list(res["planners"])[0] == "ours (pose dynamics; protocol CEM)" and list(res["planners"])[-1] == "random"
    assert res["eval_s"] > 0.0 and "ours" in res["energy_quality"] and res["diagnostics_s"] > 0.0


_HOLD_SCRIPT = """
import sys, json, numpy as np
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from pathlib import Path
from pusht_bench import collect
out = Path(sys.argv[3])
for hold in (1, 5):
    collect.collect(out / f"bag{hold}", out / f"held{hold}.npz", episodes=1, steps=20, heldout_episodes=1,
                    heldout_steps=10, resolution=64, seed=3, hold_steps=hold)
collect.collect(out / "bag_more", out / "held_more.npz", episodes=2, steps=12, heldout_episodes=1,
                heldout_steps=10, resolution=64, seed=3)
"""


@pytest.mark.skipif(not BENCH_PY.exists(), reason="PushT benchmark venv missing: run `make bench-pusht-setup`")
def test_collection_holds_the_draw_in_training_episodes_only_and_the_heldout_set_stays(tmp_path):
    proc = subprocess.run([str(BENCH_PY), "-c", _HOLD_SCRIPT, str(ROOT), str(BENCH), str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    from ami_world_model.data.bags import BagSpec, load_episodes

    # The held-out trajectories (the evaluation's starts and goals) are the same: holding leaves the random
    # stream as it was.
    h1, h5 = np.load(tmp_path / "held1.npz"), np.load(tmp_path / "held5.npz")
    np.testing.assert_array_equal(h1["states"], h5["states"])
    np.testing.assert_array_equal(h1["actions"], h5["actions"])
    # ... and so does a bigger training set: the held-out rule draws from its own stream.
    more = np.load(tmp_path / "held_more.npz")
    np.testing.assert_array_equal(h1["actions"], more["actions"])
    np.testing.assert_array_equal(h1["frames"], more["frames"])
    a1 = load_episodes(tmp_path / "bag1", BagSpec(image_size=[64, 64])).episodes[0].actions
    a5 = load_episodes(tmp_path / "bag5", BagSpec(image_size=[64, 64])).episodes[0].actions
    assert a1.shape == a5.shape == (20, 2)
    np.testing.assert_array_equal(a1[0], a5[0])  # the first draw is the same; then the held one repeats
    # Within a block of 5 the command changes only where the clip to the block's 100 px bites.
    same5 = np.mean([np.allclose(a5[i], a5[i - 1], atol=1e-3) for i in range(20) if i % 5])
    same1 = np.mean([np.allclose(a1[i], a1[i - 1], atol=1e-3) for i in range(20) if i % 5])
    assert same5 >= 0.5 and same1 == 0.0


def _points_episode(rng, steps=60):
    """A recorded episode in the bag's units (px / 1000): the agent moves 10 px per unit command per step, the
    block and its tip 60 px away stay put, the agent's velocity is the last step's motion per 0.1 s."""
    from types import SimpleNamespace

    a = rng.uniform(-1, 1, size=(steps, 2)).astype(np.float32)
    agent = np.cumsum(np.r_[[[200.0, 200.0]], 10 * a[:-1]], axis=0)
    block = np.tile([[300.0, 250.0, 300.0, 310.0]], (steps, 1))
    vel = np.r_[[[0.0, 0.0]], 100 * a[:-1]]
    return SimpleNamespace(targets=np.c_[agent, block] * 1e-3, states=vel * 1e-3, actions=a)


def test_state_model_transitions_energy_and_fit():
    sm = _bench_module("state_model")
    import torch

    ep = _points_episode(np.random.default_rng(0))
    x, y, idx = sm.transitions([ep], 5, 1e-3)
    assert x.shape == (55, 10) and y.shape == (55, 8) and np.all(idx == 0)
    np.testing.assert_allclose(x[3, :6], ep.targets[3] * 1e3, rtol=1e-5)  # px
    np.testing.assert_allclose(x[3, 8:], ep.actions[3:8].mean(0), rtol=1e-5)  # the block's mean command
    np.testing.assert_allclose(y[3, :6], ep.targets[8] * 1e3, rtol=1e-5)  # 5 records later
    with pytest.raises(ValueError, match="pose topics"):
        sm.transitions([type(ep)(targets=None, states=None, actions=ep.actions)], 5, 1e-3)

    # The oracle's energy, on points: 20 px of position error or pi/9 of block angle each count 1.
    goal = torch.tensor([0.0, 0.0, 100.0, 100.0, 100.0, 160.0, 0.0, 0.0])
    moved = goal.clone()
    moved[0] += 20.0
    turned = goal.clone()
    turned[4:6] = torch.tensor([100.0 + 60 * np.sin(np.pi / 9), 100.0 + 60 * np.cos(np.pi / 9)])
    e = sm.success_energy(torch.stack([goal, moved, turned]), goal)
    np.testing.assert_allclose(e.numpy(), [0.0, 1.0, 1.0], atol=1e-5)

    # On these linear dynamics, a short fit predicts the agent's block displacement far better than "no motion".
    rng = np.random.default_rng(1)
    model, metrics = sm.train([_points_episode(rng) for _ in range(12)], 5, 1e-3,
                              sm.StateModelConfig(hidden=64, depth=2, steps=600, val_fraction=0.25))
    assert metrics["val_transitions"] == 3 * 55 and metrics["transitions"] == 9 * 55
    assert metrics["val_error_px"]["agent"] < 0.3 * metrics["val_no_motion_px"]["agent"]
    assert metrics["val_no_motion_px"]["block"] == 0.0


def test_state_model_bag_without_the_agent_joint_state_is_a_bag_error(tmp_path):
    """run.py skips the bound's rows on a BagError (bags recorded before /joint_states); load_bag must raise it."""
    sm = _bench_module("state_model")
    from ami_world_model.data.bags import BagError, BagWriter

    with BagWriter(tmp_path / "bag") as bag:
        for i in range(4):
            t = 0.01 + 0.1 * i
            bag.image("/camera/image_raw", t, np.zeros((64, 64, 3), np.uint8))
            bag.twist_stamped("/servo_node/delta_twist_cmds", t, (0.1, 0.0, 0.0))
            for topic in ("/agent_pose", "/block_pose", "/block_tip_pose"):
                bag.pose_stamped(topic, t, (0.1, 0.2, 0.0), frame_id="pusht")
    with pytest.raises(BagError, match="/joint_states"):
        sm.load_bag(tmp_path / "bag", 64)
