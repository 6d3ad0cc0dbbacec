"""TensorRT: the engine cache's key and file checks (CPU), and the real engine path (skipped without a GPU)."""
import importlib.util

import pytest
import torch

from ami_world_model.inference import engine_cache
from ami_world_model.inference.engine_cache import EngineFileError, EngineKey
from ami_world_model.inference.errors import BackendError

PROFILE = engine_cache.make_profile({"z": [1, 1, 16, 96], "actions": [1, 1, 2]}, max_batch=128, opt_batch=128)
KEY = EngineKey("ab" * 32, "11.4.0.106", "NVIDIA H200", "fp16", PROFILE)
ENGINE = bytes(range(256)) * 40  # stands in for a serialized plan: the cache treats it as opaque bytes


def test_profile_covers_batch_one_to_max():
    (actions, z) = PROFILE  # sorted by name
    assert actions == ("actions", (1, 1, 2), (128, 1, 2), (128, 1, 2))
    assert z[1][0] == 1 and z[3][0] == 128 and z[1][1:] == (1, 16, 96)
    with pytest.raises(ValueError):
        engine_cache.make_profile({"z": [1, 2]}, max_batch=4, opt_batch=8)


def test_round_trip_and_key_in_file_name(tmp_path):
    path = engine_cache.engine_path(tmp_path, "predictor", KEY)
    assert path.name == f"predictor.fp16.{KEY.digest()}.engine"
    engine_cache.write_engine(path, ENGINE, KEY)
    assert engine_cache.read_engine(path, KEY) == ENGINE
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp files left behind
    assert EngineKey.from_dict(KEY.to_dict()) == KEY


@pytest.mark.parametrize(
    "field,value",
    [("onnx_sha256", "cd" * 32), ("tensorrt_version", "10.13.0"), ("gpu_name", "Orin"), ("precision", "fp32"),
     ("profile", engine_cache.make_profile({"z": [1, 1, 16, 96], "actions": [1, 1, 2]}, 256, 256))],
)
def test_any_key_change_means_another_engine(tmp_path, field, value):
    changed = EngineKey(**{**KEY.__dict__, field: value})
    assert changed.digest() != KEY.digest()
    assert engine_cache.engine_path(tmp_path, "p", changed) != engine_cache.engine_path(tmp_path, "p", KEY)
    path = engine_cache.write_engine(tmp_path / "e.engine", ENGINE, KEY)
    with pytest.raises(EngineFileError, match=f"another configuration: {field}"):
        engine_cache.read_engine(path, changed)  # a renamed / copied file is still caught by its header


def test_foreign_truncated_and_corrupt_files_are_refused(tmp_path):
    path = tmp_path / "e.engine"
    with pytest.raises(EngineFileError, match="does not exist"):
        engine_cache.read_engine(path, KEY)
    path.write_bytes(ENGINE)  # a raw plan (trtexec --saveEngine) or any other file
    with pytest.raises(EngineFileError, match="not an ami_world_model engine"):
        engine_cache.read_engine(path, KEY)
    good = engine_cache.write_engine(path, ENGINE, KEY).read_bytes()
    path.write_bytes(good[: len(engine_cache.MAGIC) + 4])
    with pytest.raises(EngineFileError, match="truncated"):
        engine_cache.read_engine(path, KEY)
    path.write_bytes(good[:-10])
    with pytest.raises(EngineFileError, match="corrupt"):
        engine_cache.read_engine(path, KEY)
    flipped = bytearray(good)
    flipped[-1] ^= 0xFF
    path.write_bytes(bytes(flipped))
    with pytest.raises(EngineFileError, match="corrupt"):
        engine_cache.read_engine(path, KEY)
    hdr = good.replace(b'"payload_bytes"', b'"payload_bytez"')
    path.write_bytes(hdr)
    with pytest.raises(EngineFileError, match="corrupt header"):
        engine_cache.read_engine(path, KEY)
    assert issubclass(EngineFileError, BackendError)  # callers catch one error type


# --- the real thing: needs tensorrt + CUDA -----------------------------------------------------------

HAVE_TRT = importlib.util.find_spec("tensorrt") is not None
gpu = pytest.mark.skipif(
    not (HAVE_TRT and torch.cuda.is_available()),
    reason="needs an NVIDIA GPU with the tensorrt package (scripts/gpu_check.sh runs these on one)",
)


@pytest.fixture(scope="module")
def model():
    from ami_world_model.models.config import WorldModelConfig
    from ami_world_model.models.world_model import WorldModel

    torch.manual_seed(0)
    model = WorldModel(WorldModelConfig.tiny()).eval()
    with torch.no_grad():  # the predictor head starts at zero (output = input): perturb to test something
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def _rel_l2(a, b):
    return float((a.float() - b.float()).norm() / b.float().norm())


@gpu
@pytest.mark.parametrize("precision,tol", [("fp32", 1e-4), ("fp16", 1e-2)])
def test_engine_parity_with_torch_on_device(model, tmp_path, precision, tol):
    from ami_world_model.inference.tensorrt_backend import TensorRTBackend

    cfg = model.config
    backend = TensorRTBackend(model, device="cuda", cache_dir=tmp_path, precision=precision, max_batch=32)
    ref_model = model.to("cuda")
    images = torch.rand(3, 3, 64, 64, device="cuda")
    z = torch.randn(40, 1, cfg.num_latents, cfg.latent_dim, device="cuda")  # > max_batch: split in two
    actions = 0.1 * torch.randn(40, 1, 2, device="cuda")
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False  # a true FP32 reference
    try:
        with torch.no_grad():
            ref_z, ref_next = ref_model.encode(images), ref_model.next(z, actions)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    got_z, got_next = backend.encode(images), backend.next(z, actions)
    assert got_z.device.type == "cuda" and got_next.device.type == "cuda"  # stays on the GPU
    assert _rel_l2(got_z, ref_z) < tol and _rel_l2(got_next, ref_next) < tol
    backend.close()


@gpu
def test_engine_cache_hit_rebuild_and_refusal(model, tmp_path):
    from ami_world_model.inference.tensorrt_backend import TensorRTBackend

    kw = dict(device="cuda", cache_dir=tmp_path, precision="fp16", max_batch=16)
    first = TensorRTBackend(model, **kw)
    path = first.engine_paths["predictor"]
    first.close()
    mtime = path.stat().st_mtime_ns
    TensorRTBackend(model, **kw).close()
    assert path.stat().st_mtime_ns == mtime  # cache hit: not rebuilt
    path.write_bytes(b"not an engine")
    with pytest.raises(BackendError, match="not an ami_world_model engine"):
        TensorRTBackend(model, rebuild_bad_engines=False, **kw)
    rebuilt = TensorRTBackend(model, **kw)
    assert engine_cache.read_engine(path, rebuilt._key("predictor", rebuilt.onnx_paths["predictor"]))
    rebuilt.close()
    other = TensorRTBackend(model, **{**kw, "max_batch": 32})  # another profile: another file
    assert other.engine_paths["predictor"] != path
    other.close()


def test_oversized_engine_is_refused_from_its_header(tmp_path, monkeypatch):
    path = engine_cache.write_engine(tmp_path / "e.engine", ENGINE, KEY)
    with pytest.raises(EngineFileError, match=rf"{len(ENGINE)}-byte engine, more than the 10 bytes allowed"):
        engine_cache.read_engine(path, KEY, max_bytes=10)
    assert engine_cache.read_engine(path, KEY, max_bytes=len(ENGINE)) == ENGINE
    # the bound a backend uses grows with the model and leaves room for TensorRT's own data
    assert engine_cache.max_engine_bytes(1_000_000) > engine_cache.max_engine_bytes(1000) > 4 * 1000
