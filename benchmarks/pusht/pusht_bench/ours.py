"""Ours: the project's JEPA world model, trained on the PushT bag by `ami-wm train`, unchanged.

Training runs the CLI in a subprocess (``python -m ami_world_model.cli train ...``), exactly as a user would
after recording a bag: encoder pretraining, then the action-conditioned predictor on the frozen encoder
with ``--frame-skip`` = the protocol's frameskip (one model step = 5 env steps, the mean command over them).
With ``pose_topics`` (the bag's /agent_pose, /block_pose, /block_tip_pose) the predictor stage gets
``--pose-topic`` for each: the encoder is fine-tuned with a read-out head that says where the agent and the T
are, and the planner's energy ("auto", ``model_energy``) is then the summed planar distance of those read-outs
between the predicted latent and the goal image's latent. The peer gets no poses: a caveat of the comparison.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from ami_world_model.config import ImageSpec
from ami_world_model.evaluation.energy_quality import model_energy
from ami_world_model.models.checkpoint import load_world_model
from ami_world_model.models.config import EncoderConfig, PredictorConfig, ReadoutConfig
from ami_world_model.planning.dynamics import PoseState, WorldModelState, make_pose_dynamics, make_world_model_dynamics
from ami_world_model.planning.energy import make_pose_energy
from ami_world_model.training.train_readout import ReadoutTrainConfig


def _run(cmd: List[str], env: Dict[str, str]) -> Dict[str, Any]:
    print("+", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    last = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    return json.loads(last[-1]) if last else {}


def train(bag: Path, out_dir: Path, encoder_steps: int, predictor_steps: int, frameskip: int,
          batch_size: int, env: Dict[str, str], seed: int = 0, pose_topics: Sequence[str] = (),
          readout_steps: int = 0, readout_kind: Optional[str] = None, pool: Optional[int] = None,
          readout_keep_weight: Optional[float] = None, predictor_width: Optional[int] = None,
          predictor_depth: Optional[int] = None, state_topic: Optional[str] = None, state_field: Optional[str] = None,
          state_joints: Sequence[str] = (), pose_dynamics_frame: Sequence[str] = (),
          pose_dynamics_steps: Optional[int] = None, pose_dynamics_walls: Sequence[Sequence[float]] = (),
          readout_lr: Optional[float] = None,
          readout_batch_size: Optional[int] = None, image_size: Optional[int] = None,
          patch_size: Optional[int] = None) -> Dict[str, Any]:
    """`ami-wm train encoder` (``--pool``, ``--image-size``, ``--patch-size`` when given) then `ami-wm train
    predictor` (``--predictor-width`` / ``--predictor-depth`` when given; ``--pose-topic`` per pose topic and
    ``--readout-steps``, ``--readout-kind``, ``--readout-keep-weight``, ``--readout-lr`` and
    ``--readout-batch-size`` when there are any; ``--state-topic`` / ``--state-field`` / ``--state-joint`` and
    ``--pose-dynamics-frame`` / ``--pose-dynamics-steps`` / ``--pose-dynamics-wall`` (per wall) when given);
    returns the checkpoint stem and timings."""
    out_dir.mkdir(parents=True, exist_ok=True)
    base = [sys.executable, "-m", "ami_world_model.cli", "train"]
    common = ["--batch-size", str(batch_size), "--seed", str(seed), "--no-progress"]
    poses = [arg for topic in pose_topics for arg in ("--pose-topic", topic)]
    if pose_topics:
        poses += ["--readout-steps", str(readout_steps)]
        poses += ["--readout-kind", readout_kind] if readout_kind else []
        poses += ["--readout-keep-weight", str(readout_keep_weight)] if readout_keep_weight is not None else []
        poses += ["--readout-lr", str(readout_lr)] if readout_lr is not None else []
        poses += ["--readout-batch-size", str(readout_batch_size)] if readout_batch_size is not None else []
    if state_topic:
        poses += ["--state-topic", state_topic] + (["--state-field", state_field] if state_field else [])
        poses += [arg for joint in state_joints for arg in ("--state-joint", joint)]
    if pose_dynamics_frame:
        poses += ["--pose-dynamics-frame", ",".join(pose_dynamics_frame)]
        poses += ["--pose-dynamics-steps", str(pose_dynamics_steps)] if pose_dynamics_steps is not None else []
        # "=": a wall's first number may be negative, which argparse would take for an option
        poses += ["--pose-dynamics-wall=" + ",".join(repr(float(x)) for x in wall) for wall in pose_dynamics_walls]
    pooling = ["--pool", str(pool)] if pool is not None else []
    pooling += ["--image-size", str(image_size)] if image_size is not None else []
    pooling += ["--patch-size", str(patch_size)] if patch_size is not None else []
    sizing = ["--predictor-width", str(predictor_width)] if predictor_width is not None else []
    sizing += ["--predictor-depth", str(predictor_depth)] if predictor_depth is not None else []
    t0 = time.perf_counter()
    enc = _run(base + ["encoder", "--data", str(bag), "--out", str(out_dir / "encoder"), "--steps",
                       str(encoder_steps), "--val-every", str(max(encoder_steps, 1))] + pooling + common, env)
    t1 = time.perf_counter()
    pred = _run(base + ["predictor", "--data", str(bag), "--encoder", str(out_dir / "encoder"), "--out",
                        str(out_dir / "wm"), "--steps", str(predictor_steps), "--frame-skip", str(frameskip),
                        "--val-every", str(max(predictor_steps, 1))] + sizing + poses + common, env)
    t2 = time.perf_counter()
    return {"checkpoint": str(out_dir / "wm"), "encoder_s": t1 - t0, "predictor_s": t2 - t1,
            "train_s": t2 - t0, "encoder_steps": encoder_steps, "predictor_steps": predictor_steps,
            "pose_topics": list(pose_topics), "readout_steps": readout_steps if pose_topics else 0,
            "readout_kind": (readout_kind or ReadoutConfig().kind) if pose_topics else None,
            "readout_keep_weight": (ReadoutTrainConfig().keep_weight if readout_keep_weight is None
                                    else readout_keep_weight) if pose_topics else None,
            "readout_lr": (ReadoutTrainConfig().lr if readout_lr is None else readout_lr) if pose_topics else None,
            "readout_batch_size": (ReadoutTrainConfig().batch_size if readout_batch_size is None
                                   else readout_batch_size) if pose_topics else None,
            "pool": EncoderConfig().pool if pool is None else pool,
            "image_size": ImageSpec().height if image_size is None else image_size,
            "patch_size": EncoderConfig().patch_size if patch_size is None else patch_size,
            "predictor_width": PredictorConfig().embed_dim if predictor_width is None else predictor_width,
            "predictor_depth": PredictorConfig().depth if predictor_depth is None else predictor_depth,
            "state_topic": state_topic, "state_field": state_field,
            "pose_dynamics_frame": list(pose_dynamics_frame), "pose_dynamics_steps": pose_dynamics_steps,
            "pose_dynamics_walls": [list(w) for w in pose_dynamics_walls],
            "encoder_metrics": enc, "predictor_metrics": pred}


class OursPlanning:
    """Adapters that let the RecedingHorizonController plan with our checkpoint (as the node does).

    ``energy_kind`` as the node's ``planner.energy``: "auto" is the read-out distance when the checkpoint has
    a read-out head, else the latent L1; "l1" forces the latent L1 (the diagnostics compare the two).
    ``proprio(obs)``: the env's observation -> the model's proprioceptive state, as the bag recorded it; needed
    when the checkpoint was trained with one (``--state-topic``).

    With a pose-dynamics head (``--pose-dynamics-frame``), ``pose_state0`` / ``pose_dynamics`` /
    ``pose_energy`` plan in read-out space: the start and goal positions are what the read-out sees in the
    current and the goal image, the head steps them.
    """

    def __init__(self, checkpoint: str, energy_kind: str = "auto",
                 proprio: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> None:
        self.model = load_world_model(checkpoint).eval()
        self.proprio = proprio
        self.energy_kind = energy_kind
        self.energy = model_energy(self.model, energy_kind)  # (state, goal [N, D]) -> [S]; the planner's
        self.k = self.model.context_frames
        self.dynamics = make_world_model_dynamics(self.model.next, self.k)
        spec = self.model.config.action
        self.low, self.high = list(spec.low), list(spec.high)
        head = self.model.pose_dynamics
        self.pose_dynamics = make_pose_dynamics(head) if head is not None else None
        self.pose_energy = make_pose_energy(self.model.readout) if head is not None else None

    @torch.no_grad()
    def encode(self, frame_u8: np.ndarray) -> torch.Tensor:
        """``[H, W, 3]`` uint8 -> ``[N, D]`` latents."""
        img = torch.from_numpy(np.ascontiguousarray(frame_u8)).float().div(255.0).permute(2, 0, 1)[None]
        return self.model.encode(img)[0]

    def proprio_state(self, obs: Optional[np.ndarray]) -> Optional[torch.Tensor]:
        """``[1, S]`` the model's state from the env's observation, or None for a model without one."""
        if not self.model.config.state.dim:
            return None
        if obs is None or self.proprio is None:
            raise ValueError("this checkpoint uses a proprioceptive state: give OursPlanning proprio= and the obs")
        return torch.from_numpy(np.asarray(self.proprio(obs), dtype=np.float32))[None]

    def state0(self, z: torch.Tensor, obs: Optional[np.ndarray] = None) -> WorldModelState:
        """The latent predictor's start: the frame repeated k times (and its state, held, when it has one)."""
        state = WorldModelState.from_history(z[None], None, self.k, action_dim=len(self.low))
        s = self.proprio_state(obs)
        if s is not None:
            state = WorldModelState(state.z, state.actions, s[:, None].expand(1, self.k, -1))
        return state

    @property
    def has_pose_dynamics(self) -> bool:
        return self.pose_dynamics is not None

    @torch.no_grad()
    def positions(self, z: torch.Tensor) -> torch.Tensor:
        """``[N, D]`` latent -> ``[P]`` read-out positions (the head's units)."""
        return self.model.readout(z[None])[0]

    def pose_state0(self, z: torch.Tensor, obs: Optional[np.ndarray] = None) -> PoseState:
        return PoseState(self.positions(z)[None], self.proprio_state(obs))

    @property
    def has_readout(self) -> bool:
        return self.model.readout is not None

    @torch.no_grad()
    def frame_energy(self, z: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """The planner's energy (``self.energy``) between two encoded frames ``[N, D]``."""
        return self.energy(z[None], goal)[0]

    @torch.no_grad()
    def readout_px(self, z: torch.Tensor, pose_scale: float) -> torch.Tensor:
        """``[N, D]`` latent -> ``[P]`` read-out positions in env pixels (the head's units / ``pose_scale``)."""
        return self.positions(z) / pose_scale

    def params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())
