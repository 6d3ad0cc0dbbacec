"""Ours: the project's JEPA world model, trained on the PushT bag by `ami-wm train`, unchanged.

Training runs the CLI in a subprocess (``python -m ami_world_model.cli train ...``), exactly as a user would
after recording a bag: encoder pretraining, then the action-conditioned predictor on the frozen encoder
with ``--frame-skip`` = the protocol's frameskip (one model step = 5 env steps, the mean command over them).
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import torch

from ami_world_model.models.checkpoint import load_world_model
from ami_world_model.planning.dynamics import WorldModelState, make_world_model_dynamics
from ami_world_model.planning.energy import latent_energy


def _run(cmd: List[str], env: Dict[str, str]) -> Dict[str, Any]:
    print("+", " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    last = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    return json.loads(last[-1]) if last else {}


def train(bag: Path, out_dir: Path, encoder_steps: int, predictor_steps: int, frameskip: int,
          batch_size: int, env: Dict[str, str], seed: int = 0) -> Dict[str, Any]:
    """`ami-wm train encoder` then `ami-wm train predictor`; returns the checkpoint stem and timings."""
    out_dir.mkdir(parents=True, exist_ok=True)
    base = [sys.executable, "-m", "ami_world_model.cli", "train"]
    common = ["--batch-size", str(batch_size), "--seed", str(seed), "--no-progress"]
    t0 = time.perf_counter()
    enc = _run(base + ["encoder", "--data", str(bag), "--out", str(out_dir / "encoder"), "--steps",
                       str(encoder_steps), "--val-every", str(max(encoder_steps, 1))] + common, env)
    t1 = time.perf_counter()
    pred = _run(base + ["predictor", "--data", str(bag), "--encoder", str(out_dir / "encoder"), "--out",
                        str(out_dir / "wm"), "--steps", str(predictor_steps), "--frame-skip", str(frameskip),
                        "--val-every", str(max(predictor_steps, 1))] + common, env)
    t2 = time.perf_counter()
    return {"checkpoint": str(out_dir / "wm"), "encoder_s": t1 - t0, "predictor_s": t2 - t1,
            "train_s": t2 - t0, "encoder_steps": encoder_steps, "predictor_steps": predictor_steps,
            "encoder_metrics": enc, "predictor_metrics": pred}


class OursPlanning:
    """Adapters that let the RecedingHorizonController plan with our checkpoint (as the node does)."""

    def __init__(self, checkpoint: str) -> None:
        self.model = load_world_model(checkpoint).eval()
        self.k = self.model.context_frames
        self.dynamics = make_world_model_dynamics(self.model.next, self.k)
        spec = self.model.config.action
        self.low, self.high = list(spec.low), list(spec.high)

    @torch.no_grad()
    def encode(self, frame_u8: np.ndarray) -> torch.Tensor:
        """``[H, W, 3]`` uint8 -> ``[N, D]`` latents."""
        img = torch.from_numpy(np.ascontiguousarray(frame_u8)).float().div(255.0).permute(2, 0, 1)[None]
        return self.model.encode(img)[0]

    def state0(self, z: torch.Tensor) -> WorldModelState:
        return WorldModelState.from_history(z[None], None, self.k, action_dim=len(self.low))

    @staticmethod
    def frame_energy(z: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        """The planner's default energy (L1 latent distance) between two encoded frames."""
        return latent_energy(z[None], goal)[0]

    def params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())
