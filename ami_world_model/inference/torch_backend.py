"""TorchBackend: the WorldModel itself, eager, on CPU or CUDA (the reference the others are checked against)."""
from __future__ import annotations

import contextlib
from typing import Optional

import torch
from torch import Tensor

from ami_world_model.inference.base import Backend
from ami_world_model.inference.errors import BackendError
from ami_world_model.models.world_model import WorldModel


class TorchBackend(Backend):
    """Eager PyTorch. The only differentiable backend: it follows the caller's grad mode, so the
    planner's gradient refinement works through it (wrap calls in ``torch.no_grad()`` otherwise).

    Args:
        model: the world model (moved to ``device``, set to eval).
        device: "cpu", "cuda", "cuda:1", ...
        fp16: run under CUDA autocast (FP16 matmuls, FP32 outputs); CUDA only.

    torch.compile is not used: on the robot its start-up compile (tens of seconds, repeated for each
    new batch size) costs more than it saves on a model this small, and ONNX Runtime / TensorRT are
    the fast paths.
    """

    name = "torch"

    def __init__(self, model: WorldModel, device: str = "cpu", fp16: bool = False) -> None:
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise BackendError(f"torch backend: device {device!r} asked for, but CUDA is not available")
        if fp16 and dev.type != "cuda":
            raise BackendError("torch backend: fp16 (autocast) needs a CUDA device")
        super().__init__(model.config, dev)
        self.model: Optional[WorldModel] = model.to(dev).eval()
        self.fp16 = fp16

    def _ctx(self) -> contextlib.AbstractContextManager:
        if self.fp16:
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def _live(self) -> WorldModel:
        if self.model is None:
            raise RuntimeError("torch backend: used after close()")
        return self.model

    def encode(self, images: Tensor) -> Tensor:
        images = self._check_images(images)
        with self._ctx():
            return self._live().encode(images).float()

    def next(self, z: Tensor, actions: Tensor, states: Optional[Tensor] = None) -> Tensor:
        z, actions, states = self._check_next(z, actions, states)
        with self._ctx():
            return self._live().next(z, actions, states).float()

    def close(self) -> None:
        self.model = None
