"""OnnxRuntimeBackend: the exported ONNX graphs on ONNX Runtime (CPU EP; the CUDA EP on a GPU)."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Dict, List, Optional, Union

import numpy as np
import torch
from torch import Tensor

from ami_world_model.inference import onnx_io
from ami_world_model.inference.base import Backend
from ami_world_model.inference.errors import BackendError
from ami_world_model.models.config import WorldModelConfig

log = logging.getLogger(__name__)


def default_threads() -> int:
    """Intra-op threads: the cores this process may use, at most 8 (more only adds sync overhead for
    graphs this small, and the planner node shares the machine with the ROS executor)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    return max(1, min(8, n))


def import_ort():
    """onnxruntime, or BackendError saying how to install it."""
    try:
        import onnxruntime
    except ImportError as e:
        raise BackendError(
            "onnxruntime backend asked for, but the `onnxruntime` package is not installed "
            "(pip install onnxruntime, or onnxruntime-gpu on an NVIDIA machine)"
        ) from e
    return onnxruntime


class OnnxRuntimeBackend(Backend):
    """Runs ``encoder.onnx`` and ``predictor.onnx`` (see onnx_io for their contract).

    Args:
        config: the checkpoint's config; the graphs' shapes are checked against it (BackendError).
        encoder_onnx, predictor_onnx: the exported files.
        device: "cpu" (CPU EP) or "cuda[:i]" (CUDA EP; inputs/outputs stay on the GPU via io binding).
        num_threads: intra-op threads for the CPU EP (default: ``default_threads()``).
        weights_sha256: when given, graphs exported from other weights are refused.
    """

    name = "onnxruntime"

    def __init__(
        self,
        config: WorldModelConfig,
        encoder_onnx: Union[str, Path],
        predictor_onnx: Union[str, Path],
        device: str = "cpu",
        num_threads: Optional[int] = None,
        weights_sha256: Optional[str] = None,
    ) -> None:
        super().__init__(config, torch.device(device))
        ort = import_ort()
        self._providers = self._pick_providers(ort)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.intra_op_num_threads = num_threads or default_threads()
        opts.inter_op_num_threads = 1  # sequential graphs: a second pool only competes for cores
        # ORT's idle workers spin-wait by default; between calls they then burn the cores the planner's own
        # torch ops (sampling, CEM update) and the camera callbacks need.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3  # errors only; shape-inference warnings are noise here
        self._sessions: Dict[str, object] = {}
        for role, path in (("encoder", encoder_onnx), ("predictor", predictor_onnx)):
            path = Path(path)
            if not path.is_file():
                raise BackendError(f"onnxruntime backend: {role} ONNX file {path} does not exist")
            onnx_io.check_onnx_file(path, config, role, weights_sha256)  # before ORT spends memory on it
            try:
                sess = ort.InferenceSession(str(path), sess_options=opts, providers=self._providers)
            except Exception as e:  # ORT raises its own exception types for corrupt / invalid files
                raise BackendError(f"onnxruntime backend: cannot load {path}: {e}") from e
            used = sess.get_providers()[0]
            wanted = self._providers[0] if isinstance(self._providers[0], str) else self._providers[0][0]
            if used != wanted:  # ORT silently falls back to CPU when e.g. the CUDA libraries do not load
                raise BackendError(
                    f"onnxruntime backend: {wanted} could not be initialised for {path} (session runs on "
                    f"{used}); check that onnxruntime-gpu matches this CUDA (torch.version.cuda = "
                    f"{torch.version.cuda})"
                )
            self._sessions[role] = sess
        self._inputs: List[str] = onnx_io.predictor_inputs(config)
        log.info("onnxruntime backend on %s with %s", self.device, self._providers[0])

    def _pick_providers(self, ort) -> List:
        available = ort.get_available_providers()
        if self.device.type == "cpu":
            return ["CPUExecutionProvider"]
        if self.device.type != "cuda":
            raise BackendError(f"onnxruntime backend: unsupported device {self.device}")
        if "CUDAExecutionProvider" not in available:
            raise BackendError(
                f"onnxruntime backend: device {self.device} asked for, but this onnxruntime has no CUDA "
                f"execution provider (available: {available}); install onnxruntime-gpu"
            )
        if hasattr(ort, "preload_dlls"):
            # onnxruntime-gpu >= 1.21: load the CUDA / cuDNN libraries that the torch wheels installed,
            # instead of requiring a system CUDA toolkit.
            try:
                ort.preload_dlls()
            except Exception as e:  # best effort: session creation below reports what is really missing
                log.debug("onnxruntime.preload_dlls failed: %s", e)
        idx = self.device.index if self.device.index is not None else 0
        return [("CUDAExecutionProvider", {"device_id": idx}), "CPUExecutionProvider"]

    def _run(self, role: str, feeds: Dict[str, Tensor], out_name: str, out_shape) -> Tensor:
        sess = self._sessions.get(role)
        if sess is None:
            raise RuntimeError("onnxruntime backend: used after close()")
        if self.device.type == "cpu":
            out = sess.run([out_name], {k: v.detach().numpy() for k, v in feeds.items()})[0]  # type: ignore[attr-defined]
            return torch.from_numpy(out)
        # CUDA: bind torch's device buffers directly (no host round trip). ORT runs on its own stream,
        # so let the producer of the inputs finish first; run_with_iobinding returns when done.
        torch.cuda.current_stream(self.device).synchronize()
        idx = self.device.index if self.device.index is not None else 0
        binding = sess.io_binding()  # type: ignore[attr-defined]
        for k, v in feeds.items():
            binding.bind_input(k, "cuda", idx, np.float32, tuple(v.shape), v.data_ptr())
        out_t = torch.empty(out_shape, dtype=torch.float32, device=self.device)
        binding.bind_output(out_name, "cuda", idx, np.float32, tuple(out_t.shape), out_t.data_ptr())
        sess.run_with_iobinding(binding)  # type: ignore[attr-defined]
        return out_t

    def encode(self, images: Tensor) -> Tensor:
        images = self._check_images(images)
        shape = (images.shape[0], self.config.num_latents, self.config.latent_dim)
        return self._run("encoder", {"images": images}, onnx_io.ENCODER_OUTPUT, shape)

    def next(self, z: Tensor, actions: Tensor, states: Optional[Tensor] = None) -> Tensor:
        z, actions, states = self._check_next(z, actions, states, fixed_frames=self.config.context_frames)
        feeds = {"z": z, "actions": actions}
        if states is not None:
            feeds["states"] = states
        shape = (z.shape[0], self.config.num_latents, self.config.latent_dim)
        return self._run("predictor", feeds, onnx_io.PREDICTOR_OUTPUT, shape)

    def close(self) -> None:
        self._sessions.clear()
