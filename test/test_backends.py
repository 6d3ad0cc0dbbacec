"""make_backend: selection, the one interface on every CPU backend, parity, and the error paths."""
import importlib.util
import logging

import pytest
import torch
from model_helpers import perturbed_tiny_model

from ami_world_model.config import ImageSpec, StateSpec
from ami_world_model.inference.backends import available_kinds, make_backend
from ami_world_model.inference.errors import BackendError
from ami_world_model.inference.export import export_onnx
from ami_world_model.models.checkpoint import save_world_model

HAVE_ORT = importlib.util.find_spec("onnxruntime") is not None
needs_ort = pytest.mark.skipif(not HAVE_ORT, reason="onnxruntime is not installed")


_model = perturbed_tiny_model


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    model = _model()
    return model, save_world_model(model, root / "wm"), root / "cache"  # one shared export cache


def _inputs(cfg, batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, cfg.image.height, cfg.image.width, generator=g)
    z = torch.randn(batch, cfg.context_frames, cfg.num_latents, cfg.latent_dim, generator=g)
    actions = 0.1 * torch.randn(batch, cfg.context_frames, cfg.action.dim, generator=g)
    return images, z, actions


@pytest.mark.parametrize("kind", ["torch", pytest.param("onnxruntime", marks=needs_ort)])
def test_every_backend_matches_the_model(ckpt, kind):
    model, stem, cache = ckpt
    cfg = model.config
    with make_backend(stem, kind=kind, cache_dir=cache) as backend:
        assert backend.name == kind and backend.device == torch.device("cpu")
        assert backend.config == cfg
        for batch in (1, 9):
            images, z, actions = _inputs(cfg, batch, seed=batch)
            with torch.no_grad():
                ref_z, ref_next = model.encode(images), model.next(z, actions)
                got_z, got_next = backend.encode(images), backend.next(z, actions)
            assert isinstance(got_z, torch.Tensor) and got_z.dtype == torch.float32
            assert got_z.shape == (batch, cfg.num_latents, cfg.latent_dim) and got_next.shape == got_z.shape
            torch.testing.assert_close(got_z, ref_z, atol=1e-4, rtol=0)
            torch.testing.assert_close(got_next, ref_next, atol=1e-4, rtol=0)


@needs_ort
def test_auto_on_cpu_picks_onnxruntime_and_logs_it(ckpt, caplog):
    _, stem, cache = ckpt
    assert available_kinds("cpu") == ["onnxruntime", "torch"]
    with caplog.at_level(logging.INFO, logger="ami_world_model.inference.backends"):
        backend = make_backend(stem, kind="auto", cache_dir=cache)
    assert backend.name == "onnxruntime"
    assert "auto -> onnxruntime" in caplog.text
    backend.close()


def test_asked_for_tensorrt_that_cannot_run_is_a_configure_time_error(ckpt):
    _, stem, cache = ckpt
    if importlib.util.find_spec("tensorrt") is None:
        with pytest.raises(BackendError, match="`tensorrt` Python package is not installed"):
            make_backend(stem, kind="tensorrt", device="cpu", cache_dir=cache)
    else:  # installed but asked for on the CPU
        with pytest.raises(BackendError, match="needs a CUDA device"):
            make_backend(stem, kind="tensorrt", device="cpu", cache_dir=cache)
    assert not (cache / "engines").exists()  # nothing was built or half-written


def test_unknown_kind_and_missing_cuda_are_backend_errors(ckpt):
    _, stem, cache = ckpt
    with pytest.raises(BackendError, match="unknown backend 'tflite'"):
        make_backend(stem, kind="tflite", cache_dir=cache)
    if not torch.cuda.is_available():
        with pytest.raises(BackendError, match="CUDA is not available"):
            make_backend(stem, kind="torch", device="cuda", cache_dir=cache)


@needs_ort
def test_onnx_whose_shapes_do_not_match_the_checkpoint_is_refused(ckpt, tmp_path):
    _, stem, cache = ckpt
    other = _model(0, image=ImageSpec(height=32, width=32))  # same architecture, other input size
    export_onnx(other, tmp_path / "other")
    with pytest.raises(BackendError, match=r"'images' dim 2 is 32, checkpoint expects 64"):
        make_backend(stem, kind="onnxruntime", onnx_dir=tmp_path / "other", cache_dir=cache)


@needs_ort
def test_onnx_from_other_weights_is_refused(ckpt, tmp_path):
    _, stem, cache = ckpt
    export_onnx(_model(seed=7), tmp_path / "other")  # same shapes, different weights
    with pytest.raises(BackendError, match="other weights"):
        make_backend(stem, kind="onnxruntime", onnx_dir=tmp_path / "other", cache_dir=cache)


@needs_ort
def test_corrupt_or_missing_onnx_is_a_backend_error(ckpt, tmp_path):
    model, stem, cache = ckpt
    export_onnx(model, tmp_path / "o")
    with pytest.raises(BackendError, match="does not exist"):
        make_backend(stem, kind="onnxruntime", onnx_dir=tmp_path / "nowhere", cache_dir=cache)
    (tmp_path / "o" / "predictor.onnx").write_bytes(b"\x00garbage" * 64)
    with pytest.raises(BackendError, match="not a readable ONNX file"):
        make_backend(stem, kind="onnxruntime", onnx_dir=tmp_path / "o", cache_dir=cache)


@pytest.mark.parametrize("kind", ["torch", pytest.param("onnxruntime", marks=needs_ort)])
def test_bad_inputs_are_clear_value_errors(ckpt, kind):
    model, stem, cache = ckpt
    backend = make_backend(stem, kind=kind, cache_dir=cache)
    with pytest.raises(ValueError, match=r"expected images \[B,3,64,64\]"):
        backend.encode(torch.rand(1, 3, 32, 32))
    _, z, actions = _inputs(model.config, 2)
    with pytest.raises(ValueError, match=r"expected actions \[2,1,2\]"):
        backend.next(z, actions[:, :, :1])
    with pytest.raises(ValueError, match="uses no states"):
        backend.next(z, actions, torch.zeros(2, 1, 3))
    if kind == "onnxruntime":  # the graph was exported for T = context_frames
        with pytest.raises(ValueError, match="T = context_frames = 1"):
            backend.next(z.repeat(1, 2, 1, 1), actions.repeat(1, 2, 1))
    backend.close()


@needs_ort
def test_states_model_through_onnxruntime(tmp_path):
    model = _model(4, context_frames=2, state=StateSpec(names=["a", "b"], mean=[0.0, 1.0], std=[1.0, 2.0]))
    backend = make_backend(model, kind="onnxruntime", cache_dir=tmp_path)
    _, z, actions = _inputs(model.config, 6)
    states = torch.randn(6, 2, 2)
    with torch.no_grad():
        ref = model.next(z, actions, states)
    torch.testing.assert_close(backend.next(z, actions, states), ref, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="uses states"):
        backend.next(z, actions)


@needs_ort
def test_onnx_is_checked_before_a_session_is_created(ckpt, tmp_path, monkeypatch):
    """Shapes and size are read from the file; ONNX Runtime never sees a graph made for another model."""
    import onnxruntime

    _, stem, cache = ckpt

    def no_session(*a, **kw):
        raise AssertionError("an InferenceSession was created for a file the checks should refuse")

    monkeypatch.setattr(onnxruntime, "InferenceSession", no_session)
    export_onnx(_model(0, image=ImageSpec(height=32, width=32)), tmp_path / "other")
    with pytest.raises(BackendError, match=r"'images' dim 2 is 32, checkpoint expects 64"):
        make_backend(stem, kind="onnxruntime", onnx_dir=tmp_path / "other", cache_dir=cache)
    big = tmp_path / "big"
    big.mkdir()
    for role in ("encoder", "predictor"):  # a file far larger than this model's graphs can be
        with open(big / f"{role}.onnx", "wb") as f:
            f.truncate(200 << 20)
    with pytest.raises(BackendError, match=r"encoder.onnx is 209715200 bytes, more than the \d+"):
        make_backend(stem, kind="onnxruntime", onnx_dir=big, cache_dir=cache)
    (big / "encoder.onnx").write_bytes(b"not a protobuf \xff\xff")
    with pytest.raises(BackendError, match="not a readable ONNX file"):
        make_backend(stem, kind="onnxruntime", onnx_dir=big, cache_dir=cache)
