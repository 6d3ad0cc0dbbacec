"""EpisodeSet -> tensors for training: frames as one uint8 array, and windows of k+H frames with actions.

A window is ``length`` frames ``t, t+s, ..., t+(length-1)*s`` (s = frame_skip) of one episode, with the
action applied after each of them. With s > 1 the action of a window step is the mean of the s recorded
actions it spans (a velocity held for s periods moves the mean velocity times s*dt), so a model trained
with frame_skip s has ActionSpec.dt_s = s * the recorded dt_s.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ami_world_model.config import ImageSpec
from ami_world_model.data.episodes import EpisodeSet
from ami_world_model.data.frame_skip import step_mean_action


@dataclass
class Windows:
    frame_index: np.ndarray  # [W, L] int64 rows into the flattened frames
    actions: np.ndarray  # [W, L, A] float32 (action after each window frame; the last is never a target)
    states: Optional[np.ndarray]  # [W, L, S] float32 or None
    targets: Optional[np.ndarray] = None  # [W, L, P] float32 positions (metres) for the read-out, or None

    def __len__(self) -> int:
        return int(self.frame_index.shape[0])


def split_episodes(data: EpisodeSet, val_fraction: float = 0.15) -> Tuple[EpisodeSet, EpisodeSet]:
    """Hold out the last episodes for validation (at least one when there are two or more)."""
    n = len(data.episodes)
    n_val = 0 if n < 2 else max(1, int(round(n * val_fraction)))
    mk = lambda eps: dataclasses.replace(data, episodes=eps)  # noqa: E731 - keeps specs, names, source
    return mk(data.episodes[: n - n_val]), mk(data.episodes[n - n_val:])


def frames_uint8(data: EpisodeSet, image: ImageSpec) -> torch.Tensor:
    """All frames, episode after episode, as uint8 [F, 3, H, W] at the model's image size (area-resized)."""
    if not data.episodes:
        raise ValueError("episode set is empty")
    imgs = torch.from_numpy(np.concatenate([e.images for e in data.episodes])).permute(0, 3, 1, 2)  # [F,3,h,w]
    if tuple(imgs.shape[2:]) != (image.height, image.width):
        out = []
        for chunk in imgs.split(256):
            out.append(F.interpolate(chunk.float(), size=(image.height, image.width), mode="area")
                       .round().clamp(0, 255).to(torch.uint8))
        imgs = torch.cat(out)
    return imgs.contiguous()


def targets_array(data: EpisodeSet) -> torch.Tensor:
    """All frames' positions, in the order of ``frames_uint8``: float32 [F, P]."""
    return torch.from_numpy(np.concatenate([e.targets for e in data.episodes]).astype(np.float32))


def to_float(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [B,3,H,W] -> float32 in [0, 1]."""
    return frames.float().div_(255.0)


@torch.no_grad()
def encode_frames(encoder: torch.nn.Module, frames: torch.Tensor, device: torch.device, batch: int = 256
                  ) -> torch.Tensor:
    """uint8 frames [F,3,H,W] -> latents [F,N,D] with the frozen encoder, ``batch`` frames at a time."""
    encoder.eval()
    return torch.cat([encoder(to_float(c).to(device)) for c in frames.split(batch)])


def make_windows(data: EpisodeSet, length: int, frame_skip: int = 1) -> Windows:
    """All windows of ``length`` frames (stride 1 in start time) across the episodes."""
    if length < 2 or frame_skip < 1:
        raise ValueError(f"need length >= 2 and frame_skip >= 1, got {length}, {frame_skip}")
    idx: List[np.ndarray] = []
    acts: List[np.ndarray] = []
    sts: List[np.ndarray] = []
    tgs: List[np.ndarray] = []
    with_targets = bool(data.target_names)  # EpisodeSet checks that every episode then has targets
    offset = 0
    span = (length - 1) * frame_skip
    for ep in data.episodes:
        t_len = len(ep)
        for t in range(0, t_len - span):
            frames = t + np.arange(length) * frame_skip
            idx.append(offset + frames)
            # mean action over each skip interval (the last window frame's interval may run past the end)
            a = [step_mean_action(ep.actions, f, frame_skip) for f in frames]
            acts.append(np.stack(a))
            if ep.states is not None:
                sts.append(ep.states[frames])
            if with_targets:
                tgs.append(ep.targets[frames])
        offset += t_len
    if not idx:
        longest = max((len(e) for e in data.episodes), default=0)
        raise ValueError(
            f"no window of {length} frames with frame_skip {frame_skip} fits (longest episode: {longest} frames)"
        )
    has_states = data.state_spec.dim > 0 and len(sts) == len(idx)
    return Windows(
        frame_index=np.stack(idx).astype(np.int64),
        actions=np.stack(acts).astype(np.float32),
        states=np.stack(sts).astype(np.float32) if has_states else None,
        targets=np.stack(tgs).astype(np.float32) if with_targets else None,
    )
