"""The read-out head: positions from the latent, its energy, checkpoint, training and the engine's choice."""
import dataclasses

import numpy as np
import pytest
import torch

from ami_world_model.config import ConfigError
from ami_world_model.data.synthetic import SquareWorldConfig, make_synthetic
from ami_world_model.models.checkpoint import CheckpointError, load_world_model, save_world_model
from ami_world_model.models.config import EncoderConfig, JepaConfig, PredictorConfig, ReadoutConfig, WorldModelConfig
from ami_world_model.models.readout import Readout
from ami_world_model.models.world_model import WorldModel
from ami_world_model.planning.energy import make_energy, resolve_energy_kind
from ami_world_model.training.train_encoder import EncoderTrainConfig, train_encoder
from ami_world_model.training.train_predictor import PredictorTrainConfig, train_predictor
from ami_world_model.training.train_readout import ReadoutTrainConfig

QUIET = dict(show_progress=False, log=lambda _: None)
RO = ReadoutConfig(names=["tool.x", "tool.y", "block.x", "block.y"], mean=[0.0] * 4, std=[1.0] * 4,
                   weights={"tool": 0.25}, hidden=16)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_readout_config_checks_names_and_weights():
    assert RO.objects() == ["tool", "block"] and RO.object_weights() == [0.25, 1.0]
    with pytest.raises(ConfigError, match="pairs"):
        ReadoutConfig(names=["tool.x"], mean=[0.0], std=[1.0])
    with pytest.raises(ConfigError, match="<object>.x"):
        ReadoutConfig(names=["tool.y", "tool.x"], mean=[0.0] * 2, std=[1.0] * 2)
    with pytest.raises(ConfigError, match="unknown object"):
        ReadoutConfig(names=["tool.x", "tool.y"], mean=[0.0] * 2, std=[1.0] * 2, weights={"block": 1.0})
    with pytest.raises(ConfigError, match="std"):
        ReadoutConfig(names=["tool.x", "tool.y"], mean=[0.0] * 2, std=[1.0, 0.0])


def test_readout_distance_is_the_weighted_planar_distance():
    head = Readout(RO, num_latents=4, latent_dim=8)
    pred = torch.tensor([[0.0, 0.0, 0.3, 0.4], [0.1, 0.0, 0.0, 0.0]])
    goal = torch.zeros(4)
    # sample 0: tool at the goal, block 0.5 m away; sample 1: tool 0.1 m away (weight 0.25), block at goal
    assert head.distance(pred, goal).tolist() == pytest.approx([0.5, 0.025])


def test_energy_kind_resolution():
    assert resolve_energy_kind("auto", True) == "readout"
    assert resolve_energy_kind("auto", False) == "l1"
    assert resolve_energy_kind("l2", True) == "l2"
    with pytest.raises(ValueError, match="read-out head"):
        resolve_energy_kind("readout", False)


def test_readout_energy_ranks_by_block_distance_and_is_zero_at_the_goal():
    class FirstToken(Readout):
        """A stand-in "latent" whose read-out we control: positions written into the first token."""

        def forward(self, z):
            return z[:, 0, :4]

    energy = make_energy("readout", FirstToken(RO, num_latents=4, latent_dim=8))
    goal = torch.zeros(4, 8)
    goal[0, :4] = torch.tensor([0.1, 0.1, 0.2, 0.2])
    cand = goal.repeat(3, 1, 1)
    cand[1, 0, 2] += 0.05  # block 5 cm off
    cand[2, 0, 0] += 0.05  # tool 5 cm off (weight 0.25)
    e = energy(cand, goal)
    assert e[0] == pytest.approx(0.0, abs=1e-7)
    assert e[1] == pytest.approx(0.05, rel=1e-5) and e[2] == pytest.approx(0.0125, rel=1e-5)
    with pytest.raises(ValueError, match="does not match"):
        energy(cand, torch.zeros(5, 8))


def _model_with_readout(kind: str = "mlp") -> WorldModel:
    torch.manual_seed(0)
    cfg = WorldModelConfig(readout=dataclasses.replace(RO, hidden=8, kind=kind),
                           encoder=EncoderConfig(depth=1), predictor=PredictorConfig(depth=1))
    return WorldModel(cfg).eval()


def test_checkpoint_round_trip_keeps_the_readout(tmp_path):
    model = _model_with_readout()
    save_world_model(model, tmp_path / "wm")
    loaded = load_world_model(tmp_path / "wm")
    z = torch.randn(3, model.config.num_latents, model.config.latent_dim)
    assert torch.equal(model.read_out(z), loaded.read_out(z))
    assert loaded.config.readout.weights == {"tool": 0.25}
    # a config that names a read-out its weights lack is refused before anything is built
    meta = (tmp_path / "wm.json").read_text()
    no_head = WorldModel(dataclasses.replace(model.config, readout=ReadoutConfig()))
    save_world_model(no_head, tmp_path / "bare")
    (tmp_path / "bare.json").write_text(meta)
    with pytest.raises(CheckpointError, match="missing tensors"):
        load_world_model(tmp_path / "bare")


def test_spatial_readout_round_trip_and_checks(tmp_path):
    model = _model_with_readout("spatial")
    assert not hasattr(model.readout, "mlp") and model.readout.cells.shape == (model.config.num_latents, 1, 2)
    save_world_model(model, tmp_path / "wm")
    loaded = load_world_model(tmp_path / "wm")
    assert loaded.config.readout.kind == "spatial"
    z = torch.randn(3, model.config.num_latents, model.config.latent_dim)
    assert torch.equal(model.read_out(z), loaded.read_out(z))
    # A token the head attends to alone, with a zero offset, puts the object at that cell's centre: the output
    # is the cell's grid coordinates through the 2x2 map (sqrt(3) x identity at init), de-normalised.
    head = Readout(dataclasses.replace(RO, kind="spatial"), num_latents=4, latent_dim=8, grid=(2, 2))
    per_token = torch.zeros(1, 4, 2, 3)  # [B, N, objects, (logit, offset x, offset y)]
    per_token[0, 3, :, 0] = 50.0  # token 3 = cell (x=+1, y=+1); every other logit 0
    with torch.no_grad():
        head.tokens[2].weight.zero_()
        head.tokens[2].bias.zero_()
    head.tokens.register_forward_hook(lambda module, inputs, output: output + per_token.flatten(2))
    assert head(torch.zeros(1, 4, 8))[0].tolist() == pytest.approx([3 ** 0.5] * 4, rel=1e-4)
    with pytest.raises(ConfigError, match="kind"):
        dataclasses.replace(RO, kind="conv")
    with pytest.raises(ValueError, match="grid"):
        Readout(dataclasses.replace(RO, kind="spatial"), num_latents=6, latent_dim=8)


def test_model_without_readout_says_so():
    model = WorldModel(WorldModelConfig(encoder=EncoderConfig(depth=1), predictor=PredictorConfig(depth=1)))
    assert model.readout is None
    with pytest.raises(ValueError, match="no read-out"):
        model.read_out(torch.zeros(1, model.config.num_latents, model.config.latent_dim))


def _squares_with_targets(episodes: int, seed: int):
    """The synthetic square world with the agent's position as a pose target (instead of a state)."""
    data = make_synthetic(episodes=episodes, length=12, seed=seed, with_states=True,
                          cfg=SquareWorldConfig(distractor=False))
    eps = [dataclasses.replace(e, targets=e.states.astype(np.float32), states=None) for e in data.episodes]
    return dataclasses.replace(data, episodes=eps, state_spec=dataclasses.replace(data.state_spec, names=[],
                                                                                   mean=[], std=[]),
                               target_names=["agent.x", "agent.y"])


@pytest.mark.parametrize("kind", ["mlp", "spatial"])
def test_predictor_training_learns_a_readout(tmp_path, kind):
    data = _squares_with_targets(24, 0)
    enc, _ = train_encoder(data, EncoderTrainConfig(steps=20, batch_size=16, warmup_steps=2, val_every=0, seed=0,
                                                    encoder=EncoderConfig(depth=1), jepa=JepaConfig(depth=1)),
                           **QUIET)
    cfg = PredictorTrainConfig(steps=60, batch_size=32, warmup_steps=5, val_every=0, horizon=2,
                               predictor=PredictorConfig(depth=1),
                               readout=ReadoutTrainConfig(steps=200, batch_size=32, hidden=32, warmup_steps=10,
                                                          kind=kind))
    model, m = train_predictor(data, enc, cfg, out=tmp_path / "wm", **QUIET)
    assert model.readout is not None and model.config.readout.names == ["agent.x", "agent.y"]
    assert model.config.readout.kind == kind
    # Held-out error of the read-out against "always say the mean position" (what an untrained or
    # constant head scores): the square's position is easy to see, so the head must do clearly better.
    targets = np.concatenate([e.targets for e in data.episodes])
    mean_err = float(np.linalg.norm(targets - targets.mean(0), axis=1).mean()) * 1e3
    err = m["val_readout_error_mm"]
    assert err["encoded"]["agent"] < 0.5 * mean_err, (err, mean_err)
    assert err["predicted_step1"]["agent"] < 0.7 * mean_err, (err, mean_err)
    assert model.config.readout.metrics["val_error_mm"]["agent"] < 0.5 * mean_err
    loaded = load_world_model(tmp_path / "wm")
    z = torch.randn(2, loaded.config.num_latents, loaded.config.latent_dim)
    assert torch.equal(loaded.read_out(z), model.read_out(z))
    # --readout-steps 0: the same data trains a model without the head
    model0, _ = train_predictor(data, enc, dataclasses.replace(cfg, steps=2, readout=ReadoutTrainConfig(steps=0)),
                                **QUIET)
    assert model0.readout is None


def test_engine_picks_the_readout_energy_and_its_goal_threshold(tmp_path):
    from ami_world_model.control.engine import PlanningEngine
    from ami_world_model.node_config import PlannerNodeConfig
    from ami_world_model.safety import SupervisorConfig

    save_world_model(_model_with_readout(), tmp_path / "wm")
    params = {"checkpoint": str(tmp_path / "wm"), "backend": "torch", "goal_distance_threshold_m": 0.011,
              "goal_energy_threshold": 0.003}
    engine = PlanningEngine(PlannerNodeConfig.from_params(params), tmp_path / "wm")
    try:
        assert engine.energy_kind == "readout"
        sup = SupervisorConfig.from_node(engine.cfg, False, engine.energy_kind == "readout")
        assert sup.goal_energy_threshold == 0.011
        h, w = engine.image_hw
        goal = np.random.default_rng(0).random((3, h, w), dtype=np.float32)
        engine.set_goal(goal)
        res = engine.step(goal, None, None)
        assert res.current_energy == pytest.approx(0.0, abs=1e-6)  # the goal frame is at distance 0
        assert np.isfinite(res.planned_energy)
    finally:
        engine.close()
    engine = PlanningEngine(PlannerNodeConfig.from_params({**params, "planner.energy": "l1"}), tmp_path / "wm")
    try:
        assert engine.energy_kind == "l1"
        assert SupervisorConfig.from_node(engine.cfg, False, False).goal_energy_threshold == 0.003
    finally:
        engine.close()


def test_diagnostics_score_the_energy_the_planner_uses():
    from ami_world_model.evaluation.energy_quality import latent_energies, model_energy

    model = _model_with_readout()
    rng = np.random.default_rng(0)
    h, w = model.config.image.height, model.config.image.width
    frames = rng.integers(0, 256, (3, h, w, 3), dtype=np.uint8)
    e = latent_energies(model.encode, frames, frames[1], energy_fn=model_energy(model))
    assert e[1] == pytest.approx(0.0, abs=1e-6) and e[0] > 0 and e[2] > 0
    # the same frames scored by hand: weighted planar distance of the read-out positions
    with torch.no_grad():
        x = torch.from_numpy(frames.transpose(0, 3, 1, 2).copy()).float() / 255.0
        p = model.read_out(model.encode(x))
    assert e[0] == pytest.approx(float(model.readout.distance(p[:1], p[1])), rel=1e-5)
    l1 = latent_energies(model.encode, frames, frames[1], energy_fn=model_energy(model, "l1"))
    assert not np.allclose(l1, e)


def test_a_hostile_readout_size_is_refused_before_allocation(tmp_path):
    import json

    save_world_model(_model_with_readout(), tmp_path / "wm")
    meta = json.loads((tmp_path / "wm.json").read_text())
    meta["config"]["readout"]["hidden"] = 10**9
    (tmp_path / "wm.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="readout.hidden"):
        load_world_model(tmp_path / "wm")


def test_fit_readout_scores_its_training_frames_and_warns_when_held_out_frames_read_far_worse():
    from ami_world_model.config import ImageSpec
    from ami_world_model.models.encoder import Encoder
    from ami_world_model.training.train_readout import OVERFIT_RATIO, fit_readout, readout_config
    from ami_world_model.training.windows import frames_uint8, targets_array

    data = _squares_with_targets(8, 0)
    image = ImageSpec()
    frames, targets = frames_uint8(data, image), targets_array(data)
    cfg = ReadoutTrainConfig(steps=60, batch_size=16, hidden=16, warmup_steps=5, kind="spatial")
    rcfg = readout_config(list(data.target_names), targets.numpy(), cfg)
    torch.manual_seed(0)
    encoder = Encoder(EncoderConfig(depth=1), image)

    def fit(val_targets):
        lines = []
        _, _, m = fit_readout(encoder, frames, targets, rcfg, cfg, torch.device("cpu"), (frames, val_targets),
                              WorldModelConfig(image=image, encoder=encoder.cfg).num_latents, log=lines.append)
        return m, lines

    # Held out = the training frames themselves: both scores are of the same frames, so they agree.
    m, lines = fit(targets)
    assert set(m["train_error_mm"]) == set(m["val_error_mm"]) == {"agent"}
    assert m["train_error_mm"]["agent"] == pytest.approx(m["val_error_mm"]["agent"], rel=1e-4)
    assert m["val_to_train_error"] == pytest.approx(1.0, rel=1e-4)
    assert not any("more episodes" in line for line in lines)
    # Held-out labels that do not match their frames (the head cannot know them): far worse, and the log says
    # what to do about it.
    m, lines = fit(targets.roll(len(targets) // 2, dims=0))
    assert m["val_to_train_error"] > OVERFIT_RATIO, m
    assert m["val_error_mm"]["agent"] > m["train_error_mm"]["agent"]
    assert any("Record more episodes" in line for line in lines)
