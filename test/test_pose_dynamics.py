"""Read-out-space dynamics (models/pose_dynamics.py): the body-frame maths, equivariance, the fit, the checkpoint,
training through train_predictor, planning with it, and the refusals."""
import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from ami_world_model.config import ActionSpec, ConfigError, StateSpec
from ami_world_model.data.episodes import Episode, EpisodeSet
from ami_world_model.models.checkpoint import CheckpointError, load_world_model, save_world_model
from ami_world_model.models.config import (
    EncoderConfig,
    JepaConfig,
    PoseDynamicsConfig,
    PredictorConfig,
    ReadoutConfig,
    WorldModelConfig,
)
from ami_world_model.models.pose_dynamics import PoseDynamics, PoseState, make_pose_dynamics, rotate
from ami_world_model.models.readout import Readout
from ami_world_model.models.world_model import WorldModel
from ami_world_model.planning.config import PlannerConfig
from ami_world_model.planning.controller import RecedingHorizonController
from ami_world_model.planning.energy import make_pose_energy
from ami_world_model.training.train_encoder import EncoderTrainConfig, train_encoder
from ami_world_model.training.train_pose_dynamics import PoseDynamicsTrainConfig, fit_pose_dynamics
from ami_world_model.training.train_predictor import PredictorTrainConfig, train_predictor
from ami_world_model.training.train_readout import ReadoutTrainConfig
from ami_world_model.training.windows import split_episodes

pytestmark = pytest.mark.usefixtures("one_torch_thread")

OBJECTS = ["agent", "block", "block_tip"]
NAMES = [f"{o}.{a}" for o in OBJECTS for a in "xy"]
QUIET = dict(show_progress=False, log=lambda _: None)
ARM = 0.06  # the body's origin-to-heading distance (m)


def _head(seed: int = 0, state_dim: int = 2, **kw) -> PoseDynamics:
    torch.manual_seed(seed)
    return PoseDynamics(PoseDynamicsConfig(frame=["block", "block_tip"], hidden=16, depth=2, **kw), OBJECTS,
                        state_dim, 2).eval()


def _scene(batch: int, seed: int):
    """Random positions (the tip rigidly ARM from the block at a random heading), velocity and command."""
    g = torch.Generator().manual_seed(seed)
    agent, block = torch.rand(batch, 2, generator=g) * 0.4, torch.rand(batch, 2, generator=g) * 0.4
    theta = torch.rand(batch, generator=g) * 2 * math.pi
    tip = block + ARM * torch.stack([theta.cos(), theta.sin()], 1)
    return (torch.cat([agent, block, tip], 1), torch.randn(batch, 2, generator=g) * 0.05,
            (torch.rand(batch, 2, generator=g) - 0.5) * 0.2)


def _truth(pos: np.ndarray, vel: np.ndarray, a: np.ndarray):
    """The synthetic cell: the agent follows its command with lag; near the block it pushes it along the push
    direction and turns it by the push's lever arm. What happens depends on where the agent is in the block's
    frame, so a model that learnt it in one place and heading must carry it to the others."""
    agent, block, tip = pos[0:2], pos[2:4], pos[4:6]
    theta = math.atan2(tip[1] - block[1], tip[0] - block[0])
    c, s = math.cos(theta), math.sin(theta)
    vel = 0.5 * vel + 0.5 * a
    new_agent = agent + vel
    rel = np.array([c * (agent[0] - block[0]) + s * (agent[1] - block[1]),
                    -s * (agent[0] - block[0]) + c * (agent[1] - block[1])])
    push = math.exp(-float(rel @ rel) / 0.01)
    a_body = np.array([c * vel[0] + s * vel[1], -s * vel[0] + c * vel[1]])
    move = 0.6 * push * a_body
    turn = 8.0 * push * (rel[0] * a_body[1] - rel[1] * a_body[0])
    new_block = block + np.array([c * move[0] - s * move[1], s * move[0] + c * move[1]])
    theta2 = theta + turn
    new_tip = new_block + ARM * np.array([math.cos(theta2), math.sin(theta2)])
    return np.concatenate([new_agent, new_block, new_tip]), vel


def _record(pos: np.ndarray, length: int, policy, step) -> Episode:
    """One episode of ``length`` periods from ``pos``, the agent still: ``policy(pos) -> command``, ``step`` the
    cell (``_truth`` or ``_walled_truth``)."""
    vel = np.zeros(2)
    ps, vs, acts = [], [], []
    for _ in range(length):
        a = policy(pos)
        ps.append(pos)
        vs.append(vel)
        acts.append(a)
        pos, vel = step(pos, vel, a)
    return Episode(images=np.zeros((length, 16, 16, 3), np.uint8), actions=np.float32(acts),
                   states=np.float32(vs), targets=np.float32(ps))


def _episode_set(episodes) -> EpisodeSet:
    spec = ActionSpec(names=["linear.x", "linear.y"], low=[-0.02, -0.02], high=[0.02, 0.02])
    return EpisodeSet(episodes=list(episodes), action_spec=spec, target_names=list(NAMES),
                      state_spec=StateSpec(names=["vx", "vy"], mean=[0.0, 0.0], std=[1.0, 1.0]))


def _pose_world(episodes: int, length: int = 40, seed: int = 0) -> EpisodeSet:
    rng = np.random.default_rng(seed)
    eps = []
    for _ in range(episodes):
        block = rng.uniform(0.1, 0.3, 2)
        theta = rng.uniform(0, 2 * math.pi)
        pos = np.concatenate([block + rng.normal(0, 0.05, 2), block,
                              block + ARM * np.array([math.cos(theta), math.sin(theta)])])
        target = block + rng.normal(0, 0.03, 2)  # the agent heads for the block, so it pushes often
        eps.append(_record(pos, length, lambda p, t=target: np.clip(0.3 * (t - p[0:2]) + rng.normal(0, 0.01, 2),
                                                                    -0.02, 0.02), _truth))
    return _episode_set(eps)


def test_rotate_and_the_body_frame_outputs_take_a_scene_to_its_successor():
    v = torch.tensor([[1.0, 0.0, 0.0, 2.0]])
    c, s = torch.tensor([0.0]), torch.tensor([1.0])  # +90 degrees
    assert rotate(v, c, s)[0].tolist() == pytest.approx([0.0, 1.0, -2.0, 0.0], abs=1e-6)
    head = _head()
    pos, vel, _ = _scene(8, 0)
    nxt, nvel, _ = _scene(8, 1)  # any rigid successor: targets() then apply() must land on it exactly
    out = head.targets(pos, vel, nxt, nvel)
    assert out.shape == (8, head.cfg.sizes(3, 2, 2)[1])
    got, got_vel = head.apply(pos, vel, out)
    assert torch.allclose(got, nxt, atol=1e-5) and torch.allclose(got_vel, nvel, atol=1e-6)


def test_moving_and_turning_the_whole_scene_moves_and_turns_the_prediction_alike():
    head = _head(seed=3)
    pos, vel, act = _scene(16, 2)
    with torch.no_grad():
        nxt, nvel = head(pos, vel, act)
        phi = torch.full((16,), 1.1)
        shift = torch.tensor([0.3, -0.2]).repeat(3)
        moved = rotate(pos, phi.cos(), phi.sin()) + shift
        nxt2, nvel2 = head(moved, rotate(vel, phi.cos(), phi.sin()), rotate(act, phi.cos(), phi.sin()))
    assert torch.allclose(nxt2, rotate(nxt, phi.cos(), phi.sin()) + shift, atol=1e-5)
    assert torch.allclose(nvel2, rotate(nvel, phi.cos(), phi.sin()), atol=1e-5)
    # the heading point stays rigid with the origin over a rollout
    state = PoseState(pos, vel)
    step = make_pose_dynamics(head)
    for _ in range(4):
        state = step(state, act)
    arm = (state.positions[:, 4:6] - state.positions[:, 2:4]).norm(dim=1)
    assert torch.allclose(arm, torch.full((16,), ARM), atol=1e-5)


def test_a_fit_on_the_synthetic_cell_beats_no_motion_and_plans_the_agent_to_its_goal():
    data = _pose_world(60)
    train, val = split_episodes(data, 0.2)
    head, cfg = fit_pose_dynamics(train, val, OBJECTS, substeps=2,
                                  cfg=PoseDynamicsTrainConfig(frame=["block", "block_tip"], steps=1500,
                                                              hidden=64, depth=2),
                                  device=torch.device("cpu"), log=lambda _: None)
    err = cfg.metrics["val_step_error_mm"]
    assert cfg.substeps == 2 and cfg.metrics["transitions"] == 48 * 39
    # No motion is what an untrained head predicts for the block; the agent always moves.
    assert err["predicted"]["agent"] < 0.2 * err["no_motion"]["agent"], err
    assert err["predicted"]["block"] < 0.5 * err["no_motion"]["block"], err
    # Plan in read-out space: from a still agent 5 cm beside the block (as in the data), a goal for the agent
    # 3 cm further away from it; the energy counts the agent only.
    readout = Readout(ReadoutConfig(names=list(NAMES), mean=[0.0] * 6, std=[1.0] * 6,
                                    weights={"block": 0.0, "block_tip": 0.0}), num_latents=4, latent_dim=4)
    start = torch.tensor([[0.15, 0.2, 0.2, 0.2, 0.2 + ARM, 0.2]])
    goal = start[0].clone()
    goal[1] -= 0.03
    ctrl = RecedingHorizonController(PlannerConfig(num_samples=64, iterations=4, top_k=8, horizon_steps=3),
                                     [-0.02, -0.02], [0.02, 0.02])
    res = ctrl.plan(PoseState(start, torch.zeros(1, 2)), goal, make_pose_dynamics(head),
                    energy=make_pose_energy(readout))
    # The plan, run through the true cell (each action held for the 2 substeps), ends near the goal.
    pos, vel = start[0].double().numpy(), np.zeros(2)
    for a in res.actions.double().numpy():
        for _ in range(2):
            pos, vel = _truth(pos, vel, a)
    assert np.linalg.norm(pos[0:2] - goal[0:2].double().numpy()) < 0.3 * 0.03, (pos, res.actions)


def test_config_and_forward_refusals():
    with pytest.raises(ConfigError, match="two different"):
        PoseDynamicsConfig(frame=["block", "block"])
    with pytest.raises(ConfigError, match="positive"):
        PoseDynamicsConfig(frame=["block", "block_tip"], substeps=0)
    ro = ReadoutConfig(names=list(NAMES), mean=[0.0] * 6, std=[1.0] * 6)
    with pytest.raises(ConfigError, match="not among the read-out objects"):
        WorldModelConfig(readout=ro, pose_dynamics=PoseDynamicsConfig(frame=["block", "lid"]))
    odd = ActionSpec(names=["linear.x", "linear.y", "linear.z"], low=[-1.0] * 3, high=[1.0] * 3, mean=[0.0] * 3,
                     std=[1.0] * 3)
    with pytest.raises(ConfigError, match="even"):
        WorldModelConfig(readout=ro, action=odd, pose_dynamics=PoseDynamicsConfig(frame=["block", "block_tip"]))
    pos, _, act = _scene(2, 0)
    with pytest.raises(ValueError, match="need the state"):
        _head()(pos, None, act)


def _tiny_world_model_config(**kw) -> WorldModelConfig:
    return WorldModelConfig(readout=ReadoutConfig(names=list(NAMES), mean=[0.0] * 6, std=[1.0] * 6, hidden=8),
                            state=StateSpec(names=["vx", "vy"], mean=[0.0, 0.0], std=[1.0, 1.0]),
                            encoder=EncoderConfig(depth=1), predictor=PredictorConfig(depth=1), **kw)


def test_checkpoint_round_trip_and_a_head_the_weights_lack(tmp_path):
    torch.manual_seed(0)
    cfg = _tiny_world_model_config(pose_dynamics=PoseDynamicsConfig(frame=["block", "block_tip"], hidden=8,
                                                                     walls=[[0.0, 0.0, 1.0, 0.0]], wall_range=0.1))
    model = WorldModel(cfg).eval()
    assert model.pose_dynamics is not None
    save_world_model(model, tmp_path / "wm")
    loaded = load_world_model(tmp_path / "wm")
    assert loaded.config.pose_dynamics.walls == [[0.0, 0.0, 1.0, 0.0]] and loaded.config.pose_dynamics.wall_range == 0.1
    pos, vel, act = _scene(4, 5)
    with torch.no_grad():
        assert torch.equal(loaded.pose_dynamics(pos, vel, act)[0], model.pose_dynamics(pos, vel, act)[0])
    bare = WorldModel(_tiny_world_model_config())
    assert bare.pose_dynamics is None
    save_world_model(bare, tmp_path / "bare")
    (tmp_path / "bare.json").write_text((tmp_path / "wm.json").read_text())
    with pytest.raises(CheckpointError, match="missing tensors"):
        load_world_model(tmp_path / "bare")
    meta = json.loads((tmp_path / "wm.json").read_text())
    meta["config"]["pose_dynamics"]["hidden"] = 10 ** 7  # a hostile size: refused before anything is built
    (tmp_path / "wm.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="pose_dynamics.hidden"):
        load_world_model(tmp_path / "wm")
    meta["config"]["pose_dynamics"]["hidden"] = 8
    meta["config"]["pose_dynamics"]["walls"] = [[0.0, 0.0, 1.0, 0.0]] * 10 ** 5  # as hostile, in the input layer
    (tmp_path / "wm.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="pose_dynamics.walls"):
        load_world_model(tmp_path / "wm")


def test_train_predictor_fits_the_head_with_the_model_and_the_cli_refuses_a_bad_frame(tmp_path):
    data = _pose_world(16, length=20)
    data = dataclasses.replace(data, episodes=[dataclasses.replace(
        e, images=np.random.default_rng(i).integers(0, 255, (len(e), 64, 64, 3), dtype=np.uint8))
        for i, e in enumerate(data.episodes)])
    enc, _ = train_encoder(data, EncoderTrainConfig(steps=2, batch_size=8, warmup_steps=1, val_every=0, seed=0,
                                                    encoder=EncoderConfig(depth=1), jepa=JepaConfig(depth=1)),
                           **QUIET)
    cfg = PredictorTrainConfig(steps=2, batch_size=8, warmup_steps=1, val_every=0, horizon=1, frame_skip=2,
                               predictor=PredictorConfig(depth=1),
                               readout=ReadoutTrainConfig(steps=2, batch_size=8, hidden=8, warmup_steps=1),
                               pose_dynamics=PoseDynamicsTrainConfig(frame=["block", "block_tip"], steps=300,
                                                                     hidden=32, depth=2))
    model, _ = train_predictor(data, enc, cfg, out=tmp_path / "wm", **QUIET)
    pd = model.config.pose_dynamics
    assert model.pose_dynamics is not None and pd.substeps == 2 and pd.metrics["steps"] == 300
    err = pd.metrics["val_step_error_mm"]
    assert err["predicted"]["agent"] < 0.5 * err["no_motion"]["agent"], err
    loaded = load_world_model(tmp_path / "wm")
    pos, vel, act = _scene(3, 7)
    with torch.no_grad():
        assert torch.equal(loaded.pose_dynamics.step(pos, vel, act)[0], model.pose_dynamics.step(pos, vel, act)[0])
    with pytest.raises(ValueError, match="need pose targets"):
        no_poses = dataclasses.replace(data, target_names=[], episodes=[dataclasses.replace(e, targets=None)
                                                                       for e in data.episodes])
        train_predictor(no_poses, enc, cfg, **QUIET)
    from ami_world_model.cli import main as cli_main

    with pytest.raises(SystemExit, match="two different read-out objects"):
        cli_main(["train", "predictor", "--data", str(tmp_path / "none.npz"), "--encoder", "x", "--out",
                  str(tmp_path / "o"), "--pose-dynamics-frame", "block"])


def test_the_node_engine_plans_with_the_head_and_keeps_the_latent_predictor_for_surprise(tmp_path):
    from ami_world_model.control.engine import PlanningEngine
    from ami_world_model.node_config import PlannerNodeConfig

    torch.manual_seed(0)
    cfg = _tiny_world_model_config(pose_dynamics=PoseDynamicsConfig(frame=["block", "block_tip"], hidden=8))
    model = WorldModel(cfg).eval()
    save_world_model(model, tmp_path / "wm")
    params = {"checkpoint": str(tmp_path / "wm"), "backend": "torch"}
    engine = PlanningEngine(PlannerNodeConfig.from_params(params), tmp_path / "wm")
    try:
        assert engine.dynamics_kind == "pose" and engine.budget_info()["dynamics"] == "pose"
        h, w = engine.image_hw
        rng = np.random.default_rng(0)
        goal, now = rng.random((3, h, w), dtype=np.float32), rng.random((3, h, w), dtype=np.float32)
        engine.set_goal(goal)  # before any joint state: the goal's positions need none
        engine.warm_up()
        engine.set_goal(goal)
        joint_state = [0.01, -0.02]
        res = engine.step(now, joint_state, None)
        with torch.no_grad():
            p_goal = model.read_out(model.encode(torch.from_numpy(goal)[None]))
            p_now = model.read_out(model.encode(torch.from_numpy(now)[None]))
            # the energy now is the read-out distance between the two images' positions ...
            assert res.current_energy == pytest.approx(float(model.readout.distance(p_now, p_goal[0])), rel=1e-4)
            # ... and the plan's energy is that of its actions stepped through the head from here
            pos, vel = p_now, torch.tensor([joint_state])
            for a in torch.from_numpy(res.actions):
                pos, vel = model.pose_dynamics.step(pos, vel, a[None])
            assert res.planned_energy == pytest.approx(float(model.readout.distance(pos, p_goal[0])), rel=1e-4)
        engine.record_sent(res.action)  # the surprise prediction still steps the latent predictor
        assert engine._predicted is not None and engine._predicted.shape == (cfg.num_latents, cfg.latent_dim)
    finally:
        engine.close()
    latent = PlanningEngine(PlannerNodeConfig.from_params({**params, "planner.dynamics": "latent"}), tmp_path / "wm")
    assert latent.dynamics_kind == "latent"
    latent.close()
    with pytest.raises(ValueError, match="asks for latents"):
        PlanningEngine(PlannerNodeConfig.from_params({**params, "planner.dynamics": "pose", "planner.energy": "l1"}),
                       tmp_path / "wm")
    save_world_model(WorldModel(_tiny_world_model_config()), tmp_path / "bare")
    with pytest.raises(ValueError, match="no pose-dynamics head"):
        PlanningEngine(PlannerNodeConfig.from_params({"checkpoint": str(tmp_path / "bare"), "backend": "torch",
                                                      "planner.dynamics": "pose"}), tmp_path / "bare")


WALL_X = 0.05  # the synthetic cell's wall: the block's origin cannot pass x = WALL_X


def _walled_truth(pos: np.ndarray, vel: np.ndarray, a: np.ndarray):
    """``_truth`` with a wall: a push that would take the block's origin past x = WALL_X stops it there (the
    whole body shifted back, so it stays rigid)."""
    nxt, vel = _truth(pos, vel, a)
    short = WALL_X - nxt[2]
    if short > 0:
        nxt[2] += short
        nxt[4] += short
    return nxt, vel


def _walled_world(episodes: int, length: int = 12, seed: int = 0) -> EpisodeSet:
    """Blocks near the wall, the agent pushing them towards it (-x), so that pushes often end at the wall."""
    rng = np.random.default_rng(seed)
    eps = []
    for _ in range(episodes):
        block = np.array([rng.uniform(WALL_X, WALL_X + 0.03), rng.uniform(0.1, 0.3)])
        theta = rng.uniform(0, 2 * math.pi)
        pos = np.concatenate([block + np.array([0.02, 0.0]) + rng.normal(0, 0.005, 2), block,
                              block + ARM * np.array([math.cos(theta), math.sin(theta)])])
        eps.append(_record(pos, length, lambda p: np.clip(np.array([-0.01, 0.0]) + 0.3 * (p[2:4] - p[0:2])
                                                          + rng.normal(0, 0.006, 2), -0.02, 0.02), _walled_truth))
    return _episode_set(eps)


def test_walls_are_seen_in_the_body_frame_and_invariance_holds_away_from_them():
    head = _head(walls=[[0.0, 0.0, 1.0, 0.0], [0.0, 0.5, 0.0, -2.0]], wall_range=0.2)
    origin = torch.tensor([[0.1, 0.3], [0.3, 0.45]])
    # From the origin to each wall along its normal (world frame), the length clipped at the range.
    assert head.wall_vectors(origin).tolist() == [pytest.approx([-0.1, 0.0, 0.0, 0.2]),
                                                  pytest.approx([-0.2, 0.0, 0.0, 0.05])]
    pos, vel, act = _scene(6, 3)
    feats = head.features(pos, vel, act)
    assert feats.shape == (6, head.cfg.sizes(3, 2, 2)[0]) and head.cfg.sizes(3, 2, 2)[0] == 2 + 2 + 2 + 4
    # Far from both walls (beyond the range), moving the whole scene moves the prediction alike; near one,
    # the wall is part of what the head sees, and the same scene one range nearer the wall reads differently.
    far = pos.clone()
    far[:, 0::2] += 0.25  # origins x in [0.25, 0.65]: more than 0.2 from x = 0
    far[:, 1::2] = far[:, 1::2] - pos[:, 3:4] + 0.1  # block origin y = 0.1: 0.4 from y = 0.5
    shift = torch.tensor([0.05, 0.02]).repeat(3)
    with torch.no_grad():
        a, _ = head(far, vel, act)
        b, _ = head(far + shift, vel, act)
        assert torch.allclose(b, a + shift, atol=1e-5)
        near = far - torch.tensor([0.3, 0.0]).repeat(3)  # origins now within 0.2 of x = 0 (some past it)
        assert not torch.allclose(head(near, vel, act)[0], a - torch.tensor([0.3, 0.0]).repeat(3), atol=1e-4)


def test_a_head_that_sees_the_wall_predicts_pushes_against_it_better():
    data = _walled_world(150)
    train, val = split_episodes(data, 0.2)
    errors = {}
    for name, walls in (("blind", []), ("walls", [[WALL_X, 0.0, 1.0, 0.0]])):
        _, cfg = fit_pose_dynamics(train, val, OBJECTS, substeps=2,
                                   cfg=PoseDynamicsTrainConfig(frame=["block", "block_tip"], steps=1500, hidden=64,
                                                               depth=2, walls=walls, wall_range=0.1),
                                   device=torch.device("cpu"), log=lambda _: None)
        assert cfg.walls == walls
        errors[name] = cfg.metrics["val_step_error_mm"]["predicted"]["block"]
    assert errors["walls"] < 0.75 * errors["blind"], errors  # measured 0.63 at two data seeds


def test_wall_refusals_in_the_config_and_the_cli(tmp_path):
    for bad in ([[0.0, 0.0, 1.0]], [[0.0, 0.0, 0.0, 0.0]], [[0.0, float("nan"), 1.0, 0.0]]):
        with pytest.raises(ConfigError, match="walls"):
            PoseDynamicsConfig(frame=["block", "block_tip"], walls=bad)
    with pytest.raises(ConfigError, match="wall_range"):
        PoseDynamicsConfig(walls=[[0.0, 0.0, 1.0, 0.0]], wall_range=0.0)
    from ami_world_model.cli import main as cli_main

    base = ["train", "predictor", "--data", str(tmp_path / "none.npz"), "--encoder", "x", "--out",
            str(tmp_path / "o"), "--pose-dynamics-frame", "block,block_tip"]
    with pytest.raises(SystemExit, match="four numbers"):
        cli_main(base + ["--pose-dynamics-wall", "0,0,1"])
    with pytest.raises(SystemExit, match="non-zero normal"):
        cli_main(base + ["--pose-dynamics-wall", "0,0,0,0"])
    with pytest.raises(SystemExit, match="wall_range"):
        cli_main(base + ["--pose-dynamics-wall", "0,0,1,0", "--pose-dynamics-wall-range", "-1"])
