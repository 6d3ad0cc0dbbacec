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


@pytest.fixture()
def real_builds(monkeypatch):
    """Records the device of every WorldModel / Encoder construction (the header check builds on 'meta')."""
    from ami_world_model.models import checkpoint as ck

    devices = []
    for cls in (ck.WorldModel, ck.Encoder):
        init = cls.__init__

        def spy(self, *a, _init=init, **kw):
            devices.append(torch.empty(0).device.type)  # the default device this construction runs under
            _init(self, *a, **kw)

        monkeypatch.setattr(cls, "__init__", spy)
    return devices


def test_huge_config_next_to_small_weights_fails_before_allocating(saved, real_builds):
    """Issue 12: embed_dim 8192 / depth 48 next to the 2 MB weights once allocated ~10 GB, then crashed."""
    _, stem = saved
    _edit_json(stem, lambda m: m["config"]["predictor"].update(embed_dim=8192, depth=48, num_heads=8))
    with pytest.raises(CheckpointError, match=r"predictor\.embed_dim 8192 > 4096") as err:
        load_world_model(stem)
    assert "nothing was allocated" in str(err.value)
    assert real_builds == []  # refused from the config alone: not even a meta-device build


def test_config_within_limits_but_not_the_weights_is_refused_from_the_header(saved, real_builds, monkeypatch):
    from ami_world_model.models import checkpoint as ck

    def no_read(*a, **kw):
        raise AssertionError("the weights were read before the header check refused them")

    monkeypatch.setattr(ck, "load_file", no_read)
    _, stem = saved
    _edit_json(stem, lambda m: m["config"]["encoder"].update(embed_dim=1024, num_heads=16))
    with pytest.raises(CheckpointError, match=r"tensor 'encoder\.[\w.]+' has shape \[.*96.*\] but the config "
                                              r"needs \[.*1024.*\]"):
        load_world_model(stem)
    assert real_builds and set(real_builds) == {"meta"}  # the only constructions were storage-free ones


def test_depth_and_image_limits_are_checked(saved):
    _, stem = saved
    _edit_json(stem, lambda m: m["config"]["encoder"].update(depth=100_000))
    with pytest.raises(CheckpointError, match=r"encoder\.depth 100000 > 64"):
        load_world_model(stem)


def test_parameter_count_limit(saved, monkeypatch):
    from ami_world_model.models import checkpoint_check

    monkeypatch.setattr(checkpoint_check, "MAX_PARAMS", 1000)  # the tiny model has ~550k
    _, stem = saved
    with pytest.raises(CheckpointError, match=r"parameters > the limit 1000"):
        load_world_model(stem)


def test_corrupt_safetensors_header_is_a_checkpoint_error(saved):
    _, stem = saved
    weights, _ = checkpoint_paths(stem)
    data = bytearray(weights.read_bytes())
    data[:8] = (len(data) * 4).to_bytes(8, "little")  # header longer than the file
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="header length"):
        load_world_model(stem)
    weights.write_bytes(b"\x05")
    with pytest.raises(CheckpointError, match="no safetensors header"):
        load_world_model(stem)


def test_encoder_checkpoint_header_is_checked_too(tmp_path, real_builds):
    torch.manual_seed(0)
    cfg = WorldModelConfig.tiny()
    stem = save_encoder(WorldModel(cfg).encoder, tmp_path / "enc")
    real_builds.clear()
    _edit_json(stem, lambda m: m["encoder"].update(embed_dim=128))
    with pytest.raises(CheckpointError, match=r"but the config needs"):
        load_encoder(stem)
    assert real_builds and set(real_builds) == {"meta"}
