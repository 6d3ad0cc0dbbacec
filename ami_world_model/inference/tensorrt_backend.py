"""TensorRTBackend: native TensorRT engines built from the exported ONNX, cached on disk, run on a CUDA
stream with device buffers shared with torch (no host round trips).

Uses the TensorRT 10/11 Python API: ``Builder.create_network`` (strongly typed), ``OnnxParser``,
``IBuilderConfig.set_memory_pool_limit``, one optimisation profile per engine covering batch 1..max,
``Builder.build_serialized_network``, ``Runtime.deserialize_cuda_engine``, and at run time
``set_input_shape`` / ``set_tensor_address`` / ``execute_async_v3`` on the backend's own stream.

Precision: TensorRT 11 removed the FP16 builder flag (networks are always strongly typed), so FP16
engines are built from an FP16 ONNX graph (``export_onnx(precision="fp16")``; FP32 inputs/outputs)
and FP32 engines from the FP32 graph with TF32 disabled, which works unchanged on TensorRT 10.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import torch
from torch import Tensor

from ami_world_model.inference import engine_cache, onnx_io
from ami_world_model.inference.base import Backend
from ami_world_model.inference.engine_cache import EngineFileError, EngineKey
from ami_world_model.inference.errors import BackendError
from ami_world_model.inference.export import cached_onnx
from ami_world_model.models.world_model import WorldModel
from ami_world_model.planning.config import PlannerConfig

log = logging.getLogger(__name__)

PRECISIONS = ("fp16", "fp32")
WORKSPACE_BYTES = 1 << 30  # builder scratch memory; these graphs need far less


_LOGGER = None  # one TensorRT logger per process (TensorRT warns when runtimes get different ones)


def _trt_logger(trt):
    global _LOGGER
    if _LOGGER is None:
        _LOGGER = trt.Logger(trt.Logger.WARNING)
    return _LOGGER


def import_tensorrt():
    """The tensorrt module, or BackendError saying how to get it (raised at configure time)."""
    try:
        import tensorrt as trt
    except ImportError as e:
        raise BackendError(
            "tensorrt backend asked for, but the `tensorrt` Python package is not installed. "
            "On x86_64 + NVIDIA GPU: pip install tensorrt-cu13 (or tensorrt-cu12, matching torch.version.cuda); "
            "on Jetson it comes with JetPack (python3-libnvinfer). Or choose backend onnxruntime / torch / auto."
        ) from e
    return trt


class TensorRTBackend(Backend):
    """See module doc.

    Args:
        model: the world model (its ONNX export is what the engines are built from).
        device: a CUDA device.
        cache_dir: where exported ONNX files and engines are cached.
        precision: "fp16" (default) or "fp32".
        max_batch: largest predictor batch (default: the planner's ``PlannerConfig().num_samples``); larger
            batches are split.
        max_encoder_batch: largest encoder batch (frames are encoded one at a time on the robot).
        onnx_dir: use the ONNX files here instead of exporting into the cache (checked against the model).
        rebuild_bad_engines: a corrupt / foreign / stale cached engine is rebuilt (True) or refused (False).
    """

    name = "tensorrt"

    def __init__(
        self,
        model: WorldModel,
        device: str = "cuda",
        cache_dir: Union[str, Path] = "trt_cache",
        precision: str = "fp16",
        max_batch: Optional[int] = None,
        max_encoder_batch: int = 8,
        onnx_dir: Optional[Union[str, Path]] = None,
        opset: int = 17,
        rebuild_bad_engines: bool = True,
        workspace_bytes: int = WORKSPACE_BYTES,
    ) -> None:
        trt = import_tensorrt()
        max_batch = int(PlannerConfig().num_samples) if max_batch is None else max_batch
        dev = torch.device(device)
        if dev.type != "cuda" or not torch.cuda.is_available():
            raise BackendError(f"tensorrt backend needs a CUDA device; got {device!r} "
                               f"(torch.cuda.is_available() = {torch.cuda.is_available()})")
        if precision not in PRECISIONS:
            raise BackendError(f"tensorrt backend: precision must be one of {PRECISIONS}, got {precision!r}")
        if max_batch < 1 or max_encoder_batch < 1:
            raise BackendError(f"tensorrt backend: max batches must be >= 1, got {max_batch}, {max_encoder_batch}")
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
        super().__init__(model.config, dev)
        self._trt = trt
        self._logger = _trt_logger(trt)
        self.precision = precision
        self.cache_dir = Path(cache_dir)
        self.max_batch = {"encoder": max_encoder_batch, "predictor": max_batch}
        self._workspace = workspace_bytes
        self._rebuild = rebuild_bad_engines
        params = {"encoder": model.encoder, "predictor": model.predictor}
        self._max_engine_bytes = {r: engine_cache.max_engine_bytes(sum(p.numel() for p in m.parameters()))
                                  for r, m in params.items()}
        self.onnx_paths = self._onnx(model, onnx_dir, opset)
        self._inputs = {"encoder": list(onnx_io.ENCODER_INPUTS), "predictor": onnx_io.predictor_inputs(self.config)}
        self._output = {"encoder": onnx_io.ENCODER_OUTPUT, "predictor": onnx_io.PREDICTOR_OUTPUT}
        self.engine_paths: Dict[str, Path] = {}
        self._engines: Dict[str, object] = {}
        self._contexts: Dict[str, object] = {}
        with torch.cuda.device(dev):
            self._runtime = trt.Runtime(self._logger)
            self._stream = torch.cuda.Stream(dev)
            for role in ("encoder", "predictor"):
                self._load(role, self.onnx_paths[role])

    # --- configure time ---------------------------------------------------------------------------

    def _onnx(self, model: WorldModel, onnx_dir, opset: int) -> Dict[str, Path]:
        if onnx_dir is None:
            exp = cached_onnx(model, self.cache_dir, precision=self.precision, opset=opset)
            return {"encoder": exp.encoder, "predictor": exp.predictor}
        weights = onnx_io.weights_sha256(model)
        paths = {}
        for role in ("encoder", "predictor"):
            p = Path(onnx_dir) / onnx_io.onnx_filename(role, self.precision)
            if not p.is_file():
                raise BackendError(
                    f"tensorrt backend: {p} not found (a {self.precision} engine is built from "
                    f"{onnx_io.onnx_filename(role, self.precision)}; `ami-wm export --fp16-onnx` writes it)"
                )
            onnx_io.check_onnx_file(p, self.config, role, weights)
            paths[role] = p
        return paths

    def _profile(self, role: str) -> Tuple[engine_cache.ProfileEntry, ...]:
        shapes = onnx_io.expected_shapes(self.config, role)
        inputs = {n: shapes[n] for n in self._inputs[role]}
        hi = self.max_batch[role]
        opt = 1 if role == "encoder" else hi  # the node encodes one frame; the planner sends full batches
        return engine_cache.make_profile(inputs, max_batch=hi, opt_batch=opt)

    def _key(self, role: str, onnx_path: Path) -> EngineKey:
        return EngineKey(
            onnx_sha256=engine_cache.sha256_file(onnx_path),
            tensorrt_version=str(self._trt.__version__),
            gpu_name=torch.cuda.get_device_name(self.device),
            precision=self.precision,
            profile=self._profile(role),
        )

    def _load(self, role: str, onnx_path: Path) -> None:
        key = self._key(role, onnx_path)
        path = engine_cache.engine_path(self.cache_dir, role, key)
        self.engine_paths[role] = path
        engine = None
        if path.exists():
            try:
                engine = self._deserialize(engine_cache.read_engine(path, key, self._max_engine_bytes[role]), path)
            except EngineFileError as e:
                if not self._rebuild:
                    raise
                log.warning("%s; rebuilding it", e)
        if engine is None:
            log.info("building TensorRT %s engine (%s) from %s", role, self.precision, onnx_path)
            engine_cache.write_engine(path, self._build(onnx_path, key), key)
            engine = self._deserialize(engine_cache.read_engine(path, key, self._max_engine_bytes[role]), path)
        self._check_engine(engine, role, path)
        ctx = engine.create_execution_context()
        if ctx is None:
            raise BackendError(f"tensorrt backend: cannot create an execution context for {path} (GPU memory?)")
        self._engines[role], self._contexts[role] = engine, ctx
        log.info("tensorrt %s engine %s", role, path)

    def _deserialize(self, blob: bytes, path: Path):
        engine = self._runtime.deserialize_cuda_engine(blob)
        if engine is None:  # TensorRT logs the reason (version / device mismatch, corrupt plan)
            raise EngineFileError(f"engine file {path}: TensorRT could not deserialize it")
        return engine

    def _build(self, onnx_path: Path, key: EngineKey) -> bytes:
        trt = self._trt
        builder = trt.Builder(self._logger)
        flags = 0
        strongly_typed = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
        if strongly_typed is not None:  # TensorRT 10: opt in; TensorRT 11: always on, flag accepted
            flags |= 1 << int(strongly_typed)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse_from_file(str(onnx_path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise BackendError(f"tensorrt backend: cannot parse {onnx_path}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self._workspace)
        tf32 = getattr(trt.BuilderFlag, "TF32", None)
        if key.precision == "fp32" and tf32 is not None:
            config.clear_flag(tf32)  # FP32 means FP32: TF32 matmuls would miss the 1e-4 parity
        profile = builder.create_optimization_profile()
        for name, lo, opt, hi in key.profile:
            profile.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(profile)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise BackendError(f"tensorrt backend: building the engine from {onnx_path} failed (see TensorRT log)")
        return bytes(serialized)

    def _check_engine(self, engine, role: str, path: Path) -> None:
        trt = self._trt
        shapes: Dict[str, List[int]] = {}
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            shapes[name] = list(engine.get_tensor_shape(name))
            if engine.get_tensor_dtype(name) != trt.DataType.FLOAT:
                raise BackendError(f"{path}: tensor {name!r} is {engine.get_tensor_dtype(name)}, expected FLOAT")
        onnx_io.check_shapes(shapes, self.config, role, f"engine {path}")

    # --- run time ---------------------------------------------------------------------------------

    def _run(self, role: str, feeds: Dict[str, Tensor]) -> Tensor:
        ctx = self._contexts.get(role)
        if ctx is None:
            raise RuntimeError("tensorrt backend: used after close()")
        with torch.cuda.device(self.device):
            return self._enqueue(role, ctx, feeds)

    def _enqueue(self, role: str, ctx, feeds: Dict[str, Tensor]) -> Tensor:
        b = next(iter(feeds.values())).shape[0]
        out = torch.empty((b, self.config.num_latents, self.config.latent_dim), dtype=torch.float32,
                          device=self.device)
        caller = torch.cuda.current_stream(self.device)
        # Our stream waits for whatever produced the inputs on the caller's stream (GPU-side, no host sync).
        self._stream.wait_stream(caller)
        step = self.max_batch[role]
        for lo in range(0, b, step):  # batches above the profile's max are split
            hi = min(b, lo + step)
            for name, t in feeds.items():
                part = t[lo:hi]
                if not ctx.set_input_shape(name, tuple(part.shape)):
                    raise ValueError(f"tensorrt backend: {role} input {name!r} shape {list(part.shape)} is "
                                     "outside the engine's optimisation profile")
                ctx.set_tensor_address(name, part.data_ptr())
            ctx.set_tensor_address(self._output[role], out[lo:hi].data_ptr())
            if not ctx.execute_async_v3(self._stream.cuda_stream):
                raise RuntimeError(f"tensorrt backend: {role} execution failed (see TensorRT log)")
        # The caching allocator must not recycle these buffers before our stream is done with them.
        for t in feeds.values():
            t.record_stream(self._stream)
        out.record_stream(self._stream)
        caller.wait_stream(self._stream)  # the caller's later work sees the results, still no host sync
        return out

    def encode(self, images: Tensor) -> Tensor:
        images = self._check_images(images)
        return self._run("encoder", {"images": images})

    def next(self, z: Tensor, actions: Tensor, states: Optional[Tensor] = None) -> Tensor:
        z, actions, states = self._check_next(z, actions, states, fixed_frames=self.config.context_frames)
        feeds = {"z": z, "actions": actions}
        if states is not None:
            feeds["states"] = states
        return self._run("predictor", feeds)

    def close(self) -> None:
        if self._contexts:
            self._stream.synchronize()
        self._contexts.clear()
        self._engines.clear()
