"""One entry point for inference: ``make_backend(checkpoint, kind=...)`` -> a Backend (torch / onnxruntime /
tensorrt), with the same encode / next on every one (see base.Backend and docs/INFERENCE.md).

``kind="auto"`` picks the fastest available backend for the device and logs which: tensorrt on CUDA
when importable, then onnxruntime (on CUDA only with its CUDA EP), then torch. An explicitly asked-for
backend that cannot run raises BackendError here, at configure time, never at the first frame.
"""
from __future__ import annotations

import copy
import importlib.util
import logging
import os
from pathlib import Path
from typing import List, Optional, Union

import torch

from ami_world_model.config import BACKENDS
from ami_world_model.inference import onnx_io
from ami_world_model.inference.base import Backend
from ami_world_model.inference.errors import BackendError
from ami_world_model.inference.export import cached_onnx
from ami_world_model.inference.ort_backend import OnnxRuntimeBackend, import_ort
from ami_world_model.inference.tensorrt_backend import TensorRTBackend, import_tensorrt
from ami_world_model.inference.torch_backend import TorchBackend
from ami_world_model.models.checkpoint import load_world_model
from ami_world_model.models.world_model import WorldModel
from ami_world_model.planning.config import PlannerConfig

log = logging.getLogger(__name__)

KINDS = BACKENDS  # one list, in ami_world_model/config.py

__all__ = ["KINDS", "Backend", "BackendError", "available_kinds", "default_cache_dir", "default_max_batch",
           "make_backend"]


def default_cache_dir() -> Path:
    """$AMI_WM_CACHE_DIR, else ~/.cache/ami_world_model (ONNX exports and TensorRT engines)."""
    env = os.environ.get("AMI_WM_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "ami_world_model"


def default_max_batch() -> int:
    """The planner's candidate batch (PlannerConfig.num_samples), the predictor's largest call."""
    return int(PlannerConfig().num_samples)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def available_kinds(device: Union[str, torch.device] = "cpu") -> List[str]:
    """Backends that can run on ``device``, fastest first (the order ``auto`` tries them)."""
    dev = torch.device(device)
    kinds = []
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            return []
        if _importable("tensorrt"):
            kinds.append("tensorrt")
        if _importable("onnxruntime"):
            import onnxruntime

            if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
                kinds.append("onnxruntime")
    elif _importable("onnxruntime"):
        kinds.append("onnxruntime")
    kinds.append("torch")
    return kinds


def make_backend(
    checkpoint: Union[str, Path, WorldModel],
    kind: str = "auto",
    device: Union[str, torch.device] = "cpu",
    cache_dir: Optional[Union[str, Path]] = None,
    precision: str = "fp16",
    max_batch: Optional[int] = None,
    onnx_dir: Optional[Union[str, Path]] = None,
    num_threads: Optional[int] = None,
    rebuild_bad_engines: bool = True,
) -> Backend:
    """Build the inference backend for a checkpoint.

    Args:
        checkpoint: checkpoint path (``runs/wm``, ``.json`` or ``.safetensors``) or a loaded WorldModel.
        kind: "auto" | "tensorrt" | "onnxruntime" | "torch".
        device: "cpu" or "cuda[:i]".
        cache_dir: ONNX exports and TensorRT engines (default ``default_cache_dir()``).
        precision: TensorRT engine precision, "fp16" (default) or "fp32"; the other backends run FP32.
        max_batch: largest predictor batch for the TensorRT profile (default: the planner's num_samples).
        onnx_dir: use the ONNX files there (from ``ami-wm export``) instead of exporting into the cache;
            they are checked against the checkpoint (shapes, weights hash).
        num_threads: ONNX Runtime intra-op threads on CPU.
        rebuild_bad_engines: rebuild (True) or refuse (False) a corrupt / foreign / stale engine file.
    Raises:
        BackendError: unknown kind, asked-for backend unavailable, bad engine, ONNX/engine shapes that do not
            match the checkpoint. CheckpointError: the checkpoint itself cannot be loaded.
    """
    if kind not in KINDS:
        raise BackendError(f"unknown backend {kind!r}; choose one of {KINDS}")
    dev = torch.device(device)
    if dev.type not in ("cpu", "cuda"):
        raise BackendError(f"unsupported device {str(device)!r}; use 'cpu' or 'cuda[:i]'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BackendError(f"device {str(device)!r} asked for, but CUDA is not available on this machine")
    model = _load(checkpoint)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    opts = dict(cache=cache, precision=precision, max_batch=max_batch or default_max_batch(),
                onnx_dir=onnx_dir, num_threads=num_threads, rebuild=rebuild_bad_engines)
    if kind != "auto":
        backend = _with_readout(_build(kind, model, dev, **opts), model)
        log.info("inference backend: %s on %s", backend.name, backend.device)
        return backend
    candidates = available_kinds(dev)
    for i, k in enumerate(candidates):
        try:
            backend = _build(k, model, dev, **opts)
        except BackendError as e:
            if i == len(candidates) - 1:
                raise
            log.warning("backend auto: %s unusable (%s); trying %s", k, e, candidates[i + 1])
            continue
        log.info("inference backend: auto -> %s on %s (available: %s)", backend.name, backend.device, candidates)
        return _with_readout(backend, model)
    raise BackendError(f"no inference backend available on {dev}")  # torch is always a candidate on cpu


def _with_readout(backend: Backend, model: WorldModel) -> Backend:
    if model.readout is not None:
        backend.readout = copy.deepcopy(model.readout).to(backend.device).eval().requires_grad_(False)
    if model.pose_dynamics is not None:
        backend.pose_dynamics = copy.deepcopy(model.pose_dynamics).to(backend.device).eval().requires_grad_(False)
    return backend


def _load(checkpoint: Union[str, Path, WorldModel]) -> WorldModel:
    if isinstance(checkpoint, WorldModel):
        return checkpoint
    return load_world_model(checkpoint)


def _build(kind: str, model: WorldModel, dev: torch.device, cache: Path, precision: str, max_batch: int,
           onnx_dir, num_threads, rebuild: bool) -> Backend:
    if kind == "torch":
        return TorchBackend(model, device=str(dev))
    if kind == "onnxruntime":
        import_ort()  # a missing package is a BackendError before any export work
        if onnx_dir is not None:
            enc = Path(onnx_dir) / onnx_io.onnx_filename("encoder")
            pred = Path(onnx_dir) / onnx_io.onnx_filename("predictor")
        else:
            exp = cached_onnx(model, cache)
            enc, pred = exp.encoder, exp.predictor
        return OnnxRuntimeBackend(model.config, enc, pred, device=str(dev), num_threads=num_threads,
                                  weights_sha256=onnx_io.weights_sha256(model))
    import_tensorrt()
    return TensorRTBackend(model, device=str(dev), cache_dir=cache / "engines", precision=precision,
                           max_batch=max_batch, onnx_dir=onnx_dir, rebuild_bad_engines=rebuild)
