"""Checkpoint round trip is exact; every kind of bad checkpoint is refused with CheckpointError naming why."""
import json

import pytest
import torch

from ami_world_model.models.checkpoint import (
    CheckpointError,
    checkpoint_paths,
    load_encoder,
    load_world_model,
    save_encoder,
    save_world_model,
)
from ami_world_model.models.config import PredictorConfig, WorldModelConfig
from ami_world_model.models.world_model import WorldModel


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(1)
    cfg = WorldModelConfig.tiny()
    cfg.metrics["val_one_step_l1"] = 0.123
    cfg.action.mean, cfg.action.std = [0.001, -0.002], [0.04, 0.06]
    model = WorldModel(cfg)
    stem = save_world_model(model, tmp_path / "wm", extra={"note": "test"})
    return model, stem


def test_round_trip_exact(saved):
    model, stem = saved
    loaded = load_world_model(stem)
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert loaded.config == model.config
    assert loaded.config.metrics["val_one_step_l1"] == 0.123
    model.eval()
    img, z, act = torch.rand(2, 3, 64, 64), torch.randn(2, 1, 16, 96), torch.randn(2, 1, 2) * 0.05
    assert torch.equal(model.encode(img), loaded.encode(img))
    assert torch.equal(model.next(z, act), loaded.next(z, act))
    # either file name works as the path
    for p in checkpoint_paths(stem):
        assert load_world_model(p).config == model.config
    assert json.loads(checkpoint_paths(stem)[1].read_text())["extra"] == {"note": "test"}


def _edit_json(stem, fn):
    path = checkpoint_paths(stem)[1]
    meta = json.loads(path.read_text())
    fn(meta)
    path.write_text(json.dumps(meta))


def test_unknown_version_refused(saved):
    _, stem = saved
    _edit_json(stem, lambda m: m.update(format_version=99))
    with pytest.raises(CheckpointError, match="format_version 99"):
        load_world_model(stem)


def test_config_weights_mismatch_names_tensor(saved):
    _, stem = saved
    _edit_json(stem, lambda m: m["config"]["predictor"].update(embed_dim=32))
    with pytest.raises(CheckpointError, match=r"shape \[.*\] but the config needs"):
        load_world_model(stem)


def test_missing_tensors_named(saved):
    _, stem = saved
    _edit_json(stem, lambda m: m["config"]["predictor"].update(depth=3))
    with pytest.raises(CheckpointError, match=r"missing tensors \['predictor.blocks.2"):
        load_world_model(stem)


def test_unexpected_tensors_named(saved):
    _, stem = saved
    _edit_json(stem, lambda m: m["config"]["encoder"].update(depth=3))
    with pytest.raises(CheckpointError, match=r"unexpected tensors \['encoder.blocks.3"):
        load_world_model(stem)


def test_unknown_config_key_refused(saved):
    _, stem = saved
    _edit_json(stem, lambda m: m["config"]["predictor"].update(dept=3))
    with pytest.raises(CheckpointError, match="dept"):
        load_world_model(stem)


def test_corrupt_weights_refused(saved):
    _, stem = saved
    w = checkpoint_paths(stem)[0]
    data = w.read_bytes()
    w.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(CheckpointError, match="corrupt weights"):
        load_world_model(stem)
    w.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="corrupt weights"):
        load_world_model(stem)


def test_corrupt_json_and_missing_files(saved, tmp_path):
    _, stem = saved
    checkpoint_paths(stem)[1].write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt checkpoint config"):
        load_world_model(stem)
    with pytest.raises(CheckpointError, match="not found"):
        load_world_model(tmp_path / "nothing")


def test_wrong_kind_refused(saved, tmp_path):
    model, _ = saved
    enc_stem = save_encoder(model.encoder, tmp_path / "enc")
    with pytest.raises(CheckpointError, match="kind is 'encoder'"):
        load_world_model(enc_stem)
    enc, meta = load_encoder(enc_stem)
    assert all(torch.equal(enc.state_dict()[k], v) for k, v in model.encoder.state_dict().items())
    assert meta["kind"] == "encoder"


def test_state_spec_model_round_trip(tmp_path):
    from ami_world_model.config import StateSpec

    cfg = WorldModelConfig.tiny(state=StateSpec(names=["a"], mean=[0.0], std=[1.0]),
                                predictor=PredictorConfig(embed_dim=32, depth=1))
    m = WorldModel(cfg)
    loaded = load_world_model(save_world_model(m, tmp_path / "s"))
    assert loaded.config.state.names == ["a"] and loaded.predictor.state_in is not None
