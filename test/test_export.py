"""ONNX export of the default (tiny) world model: checked files, metadata, dynamic batch, parity with torch."""
import json

import numpy as np
import onnx
import pytest
import torch
from model_helpers import perturbed_tiny_model

from ami_world_model import cli
from ami_world_model.config import StateSpec, to_dict
from ami_world_model.inference import onnx_io
from ami_world_model.inference.export import cached_onnx, export_onnx
from ami_world_model.models.checkpoint import save_world_model

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")


_model = perturbed_tiny_model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The default model, saved as a checkpoint and exported through the CLI."""
    root = tmp_path_factory.mktemp("export")
    model = _model()
    stem = save_world_model(model, root / "wm")
    out = root / "onnx"
    assert cli.main(["export", str(stem), "--out-dir", str(out)]) == 0
    return model, out


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_cli_export_writes_checked_onnx_with_config_metadata(exported):
    model, out = exported
    for role in ("encoder", "predictor"):
        proto = onnx.load(str(out / f"{role}.onnx"))
        onnx.checker.check_model(proto, full_check=True)
        assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
        meta = onnx_io.read_metadata(proto)
        assert meta[onnx_io.META_ROLE] == role
        assert json.loads(meta[onnx_io.META_CONFIG]) == to_dict(model.config)
        assert meta[onnx_io.META_WEIGHTS] == onnx_io.weights_sha256(model)
        # every input and output has a symbolic batch axis and the config's static sizes
        shapes = onnx_io.graph_shapes(proto)
        assert all(s[0] == onnx_io.BATCH for s in shapes.values())
        onnx_io.check_shapes(shapes, model.config, role, role)


@pytest.mark.parametrize("batch", [1, 5, 32])
def test_onnxruntime_matches_torch_fp32(exported, batch):
    model, out = exported
    cfg = model.config
    gen = torch.Generator().manual_seed(batch)
    images = torch.rand(batch, 3, cfg.image.height, cfg.image.width, generator=gen)
    z = torch.randn(batch, cfg.context_frames, cfg.num_latents, cfg.latent_dim, generator=gen)
    actions = 0.1 * torch.randn(batch, cfg.context_frames, cfg.action.dim, generator=gen)
    with torch.no_grad():
        ref_z, ref_next = model.encode(images).numpy(), model.next(z, actions).numpy()
    got_z = _session(out / "encoder.onnx").run(None, {"images": images.numpy()})[0]
    got_next = _session(out / "predictor.onnx").run(None, {"z": z.numpy(), "actions": actions.numpy()})[0]
    assert got_z.shape == ref_z.shape == (batch, cfg.num_latents, cfg.latent_dim)
    delta = ref_next - z[:, -1].numpy()  # what the predictor adds to its input: must be non-trivial here
    assert np.linalg.norm(delta) > 0.05 * np.linalg.norm(ref_next)
    np.testing.assert_allclose(got_z, ref_z, atol=1e-4, rtol=0)
    np.testing.assert_allclose(got_next, ref_next, atol=1e-4, rtol=0)


def test_predictor_with_states_and_two_context_frames(tmp_path):
    model = _model(1, context_frames=2, state=StateSpec(names=["j1", "j2", "j3"], mean=[0.0] * 3, std=[1.0] * 3))
    paths = export_onnx(model, tmp_path)
    sess = _session(paths.predictor)
    assert [i.name for i in sess.get_inputs()] == ["z", "actions", "states"]
    z, a, s = torch.randn(7, 2, 16, 96), 0.05 * torch.randn(7, 2, 2), torch.randn(7, 2, 3)
    with torch.no_grad():
        ref = model.next(z, a, s).numpy()
    got = sess.run(None, {"z": z.numpy(), "actions": a.numpy(), "states": s.numpy()})[0]
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
    s2 = s.clone()
    s2[:, -1] += 1.0  # the states input is really used
    with torch.no_grad():
        assert not torch.allclose(model.next(z, a, s2), torch.from_numpy(ref), atol=1e-3)


def test_fp16_export_keeps_fp32_io_and_stays_close(tmp_path):
    model = _model(2)
    paths = export_onnx(model, tmp_path, precision="fp16")
    assert paths.encoder.name == "encoder.fp16.onnx"
    proto = onnx.load(str(paths.encoder))
    assert {i.data_type for i in proto.graph.initializer} == {onnx.TensorProto.FLOAT16}
    sess = _session(paths.encoder)
    assert sess.get_inputs()[0].type == "tensor(float)" and sess.get_outputs()[0].type == "tensor(float)"
    images = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        ref = model.encode(images).numpy()
    got = sess.run(None, {"images": images.numpy()})[0]
    # FP16 has a 2^-11 relative rounding step; through 4 blocks a relative L2 error near 1e-3 is normal,
    # 1e-2 still catches real mistakes (a wrong layout or cast gives O(1)).
    assert np.linalg.norm(got - ref) / np.linalg.norm(ref) < 1e-2


def test_export_refuses_old_opset_and_unknown_precision(tmp_path):
    model = _model()
    with pytest.raises(ValueError, match="opset 13"):
        export_onnx(model, tmp_path, opset=13)
    with pytest.raises(ValueError, match="precision"):
        export_onnx(model, tmp_path, precision="int8")


def test_cached_onnx_reuses_same_model_and_reexports_changed_weights(tmp_path):
    model = _model(3)
    first = cached_onnx(model, tmp_path)
    mtime = first.encoder.stat().st_mtime_ns
    again = cached_onnx(model, tmp_path)
    assert again.encoder == first.encoder and again.encoder.stat().st_mtime_ns == mtime
    with torch.no_grad():
        model.predictor.head.bias.add_(1.0)
    changed = cached_onnx(model, tmp_path)
    assert changed.predictor.parent != first.predictor.parent
    meta = onnx_io.read_metadata(onnx.load(str(changed.predictor)))
    assert meta[onnx_io.META_WEIGHTS] == onnx_io.weights_sha256(model)


def test_cli_export_bad_checkpoint_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "broken.json").write_text("{not json")
    assert cli.main(["export", str(tmp_path / "broken"), "--out-dir", str(tmp_path / "o")]) == 2
    assert "cannot load" in capsys.readouterr().out
    assert not (tmp_path / "o").exists()


def test_cli_tensorrt_without_tensorrt_or_gpu_is_a_clear_error(exported, tmp_path, capsys):
    import importlib.util

    if importlib.util.find_spec("tensorrt") is not None and torch.cuda.is_available():
        pytest.skip("tensorrt and a GPU are present: the engine build is covered by test_tensorrt.py")
    model, _ = exported
    stem = save_world_model(model, tmp_path / "wm")
    assert cli.main(["export", str(stem), "--out-dir", str(tmp_path / "o"), "--tensorrt"]) == 2
    out = capsys.readouterr().out
    assert "tensorrt" in out and ("not installed" in out or "needs a CUDA device" in out)
    assert (tmp_path / "o" / "encoder.onnx").is_file()  # the ONNX export itself still happened
