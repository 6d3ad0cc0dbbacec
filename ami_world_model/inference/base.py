"""The backend interface: encode images to latents and predict the next latents, on one device.

Every backend (torch, onnxruntime, tensorrt) takes the same inputs and returns torch tensors on
``backend.device``, so the planner and the node never know which one runs.
"""
from __future__ import annotations

import abc
from typing import Optional, Tuple

import torch
from torch import Tensor

from ami_world_model.models.config import WorldModelConfig


class Backend(abc.ABC):
    """encode / next / close; see docs/ARCHITECTURE.md ("Backends")."""

    name: str = "abstract"

    def __init__(self, config: WorldModelConfig, device: torch.device) -> None:
        self.config = config
        self.device = torch.device(device)
        # The read-out head (models/readout.py) of a model trained with poses. It runs in torch on every
        # backend: a two-layer MLP per candidate, small next to the predictor, so it is not exported.
        self.readout: Optional[torch.nn.Module] = None
        # The read-out-space dynamics head (models/pose_dynamics.py), likewise in torch on every backend.
        self.pose_dynamics: Optional[torch.nn.Module] = None

    @property
    def has_readout(self) -> bool:
        return self.readout is not None

    @abc.abstractmethod
    def encode(self, images: Tensor) -> Tensor:
        """images [B,3,H,W] float32 in [0,1] -> latents [B,N,D] float32 on ``self.device``."""

    @abc.abstractmethod
    def next(self, z: Tensor, actions: Tensor, states: Optional[Tensor] = None) -> Tensor:
        """z [B,T,N,D], actions [B,T,A] (physical units), states [B,T,S] or None -> next latents [B,N,D]."""

    def close(self) -> None:  # noqa: B027 - optional hook: backends with nothing to free need not override
        """Free sessions / engines / device memory. Safe to call twice."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, device={str(self.device)!r})"

    # Input checks shared by all backends: a wrong shape is a clear ValueError here, not an opaque
    # error deep inside ONNX Runtime or TensorRT.
    def _check_images(self, images: Tensor) -> Tensor:
        im = self.config.image
        if not isinstance(images, Tensor) or images.dim() != 4 or tuple(images.shape[1:]) != (
            3, im.height, im.width
        ):
            got = list(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(f"{self.name}.encode: expected images [B,3,{im.height},{im.width}], got {got}")
        if images.shape[0] < 1:
            raise ValueError(f"{self.name}.encode: empty batch")
        return images.to(self.device, torch.float32).contiguous()

    def _check_next(
        self, z: Tensor, actions: Tensor, states: Optional[Tensor], fixed_frames: Optional[int] = None
    ) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
        c = self.config
        n, d, a, s = c.num_latents, c.latent_dim, c.action.dim, c.state.dim
        if z.dim() != 4 or tuple(z.shape[2:]) != (n, d):
            raise ValueError(f"{self.name}.next: expected z [B,T,{n},{d}], got {list(z.shape)}")
        b, t = z.shape[:2]
        if b < 1 or t < 1:
            raise ValueError(f"{self.name}.next: empty batch or no frames, z {list(z.shape)}")
        if fixed_frames is not None and t != fixed_frames:
            raise ValueError(
                f"{self.name}.next: this backend was exported for T = context_frames = {fixed_frames} "
                f"frames, got z with T = {t}"
            )
        if tuple(actions.shape) != (b, t, a):
            raise ValueError(f"{self.name}.next: expected actions [{b},{t},{a}], got {list(actions.shape)}")
        if s > 0:
            if states is None or tuple(states.shape) != (b, t, s):
                got = None if states is None else list(states.shape)
                raise ValueError(f"{self.name}.next: the model uses states; expected [{b},{t},{s}], got {got}")
            states = states.to(self.device, torch.float32).contiguous()
        elif states is not None:
            raise ValueError(f"{self.name}.next: the model uses no states (StateSpec is empty), got states")
        return (
            z.to(self.device, torch.float32).contiguous(),
            actions.to(self.device, torch.float32).contiguous(),
            states,
        )
