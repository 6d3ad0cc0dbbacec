"""The ROS-free episode format every data source converts to and training reads.

An episode is a time-aligned sequence: frame ``t`` was seen, then ``actions[t]`` was applied
for one step, which led to frame ``t + 1``. The last action of an episode has no successor
frame and is never a training target. Optional per-frame ``targets`` are measured positions (metres, e.g. the
tool's and the block's x, y) named by ``EpisodeSet.target_names``, for a read-out head trained on the latent.
Stored as one compressed ``.npz`` per episode set.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from ami_world_model.config import ActionSpec, StateSpec, from_dict, to_dict


@dataclass
class Episode:
    images: np.ndarray  # [T, H, W, 3] uint8 RGB
    actions: np.ndarray  # [T, A] float32, physical units of the ActionSpec
    states: Optional[np.ndarray] = None  # [T, S] float32 or None
    timestamps: Optional[np.ndarray] = None  # [T] float64 seconds
    targets: Optional[np.ndarray] = None  # [T, P] float32 positions in metres (EpisodeSet.target_names) or None

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise ValueError(f"Episode.images must be [T,H,W,3] uint8, got {self.images.shape} {self.images.dtype}")
        t = self.images.shape[0]
        if self.actions.ndim != 2 or self.actions.shape[0] != t:
            raise ValueError(f"Episode.actions must be [T={t},A], got {self.actions.shape}")
        if self.states is not None and (self.states.ndim != 2 or self.states.shape[0] != t):
            raise ValueError(f"Episode.states must be [T={t},S], got {self.states.shape}")
        if self.timestamps is not None and self.timestamps.shape != (t,):
            raise ValueError(f"Episode.timestamps must be [T={t}], got {self.timestamps.shape}")
        if self.targets is not None and (self.targets.ndim != 2 or self.targets.shape[0] != t):
            raise ValueError(f"Episode.targets must be [T={t},P], got {self.targets.shape}")

    def __len__(self) -> int:
        return int(self.images.shape[0])


@dataclass
class EpisodeSet:
    episodes: List[Episode]
    action_spec: ActionSpec
    state_spec: StateSpec = field(default_factory=StateSpec)
    source: Dict[str, object] = field(default_factory=dict)  # where the data came from (bag, sim, seed)
    # Names of the targets' columns, e.g. ["tool.x", "tool.y", "block.x", "block.y"]; empty: no targets.
    target_names: List[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Names and arrays must agree, so a read-out head never trains on unnamed (or missing) columns.
        if len(set(self.target_names)) != len(self.target_names):
            raise ValueError(f"EpisodeSet.target_names has duplicates: {self.target_names}")
        p = len(self.target_names)
        for i, ep in enumerate(self.episodes):
            if p == 0 and ep.targets is not None:
                raise ValueError(f"episode {i} has targets {ep.targets.shape} but EpisodeSet.target_names is empty")
            if p and (ep.targets is None or ep.targets.shape[1] != p):
                got = None if ep.targets is None else ep.targets.shape
                raise ValueError(f"episode {i}: targets {got}, expected [T, {p}] for {self.target_names}")

    def summary(self) -> Dict[str, object]:
        """Small JSON-able description stored in checkpoints ("training data summary")."""
        lengths = [len(e) for e in self.episodes]
        h, w = (self.episodes[0].images.shape[1:3]) if self.episodes else (0, 0)
        return {
            "episodes": len(self.episodes),
            "frames": int(sum(lengths)),
            "image_hw": [int(h), int(w)],
            "action_names": list(self.action_spec.names),
            "state_names": list(self.state_spec.names),
            "target_names": list(self.target_names),
            "source": self.source,
        }

    def save(self, path: str | Path) -> None:
        arrays: Dict[str, np.ndarray] = {}
        for i, ep in enumerate(self.episodes):
            arrays[f"e{i}_images"] = ep.images
            arrays[f"e{i}_actions"] = ep.actions.astype(np.float32)
            if ep.states is not None:
                arrays[f"e{i}_states"] = ep.states.astype(np.float32)
            if ep.timestamps is not None:
                arrays[f"e{i}_timestamps"] = ep.timestamps.astype(np.float64)
            if ep.targets is not None:
                arrays[f"e{i}_targets"] = ep.targets.astype(np.float32)
        meta = {
            "format_version": 1,
            "count": len(self.episodes),
            "action_spec": to_dict(self.action_spec),
            "state_spec": to_dict(self.state_spec),
            "source": self.source,
            "target_names": list(self.target_names),
        }
        arrays["meta_json"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> EpisodeSet:
        # allow_pickle=False: an episode file never runs code when loaded.
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta_json"]).decode())
            if meta.get("format_version") != 1:
                raise ValueError(f"{path}: unknown episode format_version {meta.get('format_version')!r}")
            eps = []
            for i in range(int(meta["count"])):
                eps.append(
                    Episode(
                        images=z[f"e{i}_images"],
                        actions=z[f"e{i}_actions"],
                        states=z[f"e{i}_states"] if f"e{i}_states" in z else None,
                        timestamps=z[f"e{i}_timestamps"] if f"e{i}_timestamps" in z else None,
                        targets=z[f"e{i}_targets"] if f"e{i}_targets" in z else None,  # older files: none
                    )
                )
        return cls(
            episodes=eps,
            action_spec=from_dict(ActionSpec, meta["action_spec"]),
            state_spec=from_dict(StateSpec, meta["state_spec"]),
            source=meta.get("source", {}),
            target_names=list(meta.get("target_names", [])),
        )
