"""Stage 1b: fine-tune the JEPA encoder so its latent says where the tool and the objects are.

A read-out head (``models/readout.py``) learns positions (metres) from the latent, supervised by recorded
poses, and the encoder is fine-tuned with it: the JEPA encoder alone encodes the tool well (about 6 mm of
read-out error on held-out frames) but hardly the 5-pixel block (about 21 mm with the encoder frozen, 7 mm
after fine-tuning; docs/DIAGNOSTICS.md). An L1 term keeps the fine-tuned latents near the JEPA ones, so the
latent stays a JEPA latent (the predictor and the surprise check still work on all of it).
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ami_world_model.models.config import ReadoutConfig
from ami_world_model.models.encoder import Encoder
from ami_world_model.models.readout import Readout, per_object_distance
from ami_world_model.training import common
from ami_world_model.training.windows import encode_frames, to_float

# The training frames the fitted head is also scored on (as many as the held-out ones, at most this many).
TRAIN_ERROR_FRAMES = 4096
# Held-out error this many times the training frames' (summed over objects): a warning in the log. PushT's
# read-out on 300 episodes: 2.1 x (agent, block, tip 4.5 / 9.7 / 5.2 px held out, 3.8 / 3.4 / 2.2 on training
# frames; benchmarks/pusht/README.md, Data).
OVERFIT_RATIO = 2.0


@dataclass
class ReadoutTrainConfig:
    steps: int = 1500  # optimiser steps of the fine-tune (0: no read-out even when the data has poses)
    batch_size: int = 64
    lr: float = 5e-4
    warmup_steps: int = 50
    keep_weight: float = 0.1  # L1 pull of the fine-tuned latents towards the JEPA encoder's
    smooth_l1_beta: float = 0.05  # on normalised positions
    hidden: int = 256
    kind: str = "mlp"  # read-out head (ReadoutConfig.kind): mlp or spatial
    weights: Dict[str, float] = field(default_factory=dict)  # energy weight per object (ReadoutConfig.weights)
    seed: int = 0


def readout_config(names: List[str], targets: np.ndarray, cfg: ReadoutTrainConfig) -> ReadoutConfig:
    """The head's config with normalisation measured on the training targets [F, P]."""
    t = targets.astype(np.float64)
    return ReadoutConfig(names=list(names), mean=[float(x) for x in t.mean(0)],
                         std=[float(x) for x in np.maximum(t.std(0), 1e-4)], weights=dict(cfg.weights),
                         hidden=cfg.hidden, kind=cfg.kind)


@torch.no_grad()
def readout_errors_mm(readout: Readout, z: Tensor, targets: Tensor) -> Dict[str, float]:
    """Mean planar error per object (mm) of the read-out on latents z [F, N, D] against targets [F, P]."""
    pred = torch.cat([readout(c) for c in z.split(1024)])
    err = per_object_distance(pred, targets).mean(0) * 1e3  # [objects]
    return {o: float(e) for o, e in zip(readout.cfg.objects(), err)}


def fit_readout(encoder: Encoder, frames: Tensor, targets: Tensor, rcfg: ReadoutConfig, cfg: ReadoutTrainConfig,
                device: torch.device, val: Tuple[Tensor, Tensor], num_latents: int,
                log: Callable[[str], None] = print) -> Tuple[Encoder, Readout, Dict[str, Any]]:
    """Fine-tune a copy of ``encoder`` with a new read-out head on uint8 frames [F,3,H,W] and targets [F,P].

    Returns (fine-tuned encoder, head, metrics with held-out errors per object before and after).
    """
    torch.manual_seed(cfg.seed)
    reference = encoder.to(device).eval().requires_grad_(False)
    tuned = copy.deepcopy(reference).train().requires_grad_(True)
    keep = cfg.keep_weight > 0  # without the pull the reference pass is not needed (a fifth of a step's time)
    head = Readout(rcfg, num_latents, encoder.cfg.embed_dim, encoder.cfg.latent_grid(encoder.image)).to(device)
    params = list(tuned.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=1e-4)
    targets = targets.to(device)
    y = head.normalize(targets)
    t0 = time.perf_counter()
    loss_val = float("nan")
    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = common.lr_at(step, cfg.steps, cfg.lr, cfg.warmup_steps)
        idx = torch.randint(frames.shape[0], (cfg.batch_size,), generator=common.step_generator(cfg.seed, step, 0))
        images = to_float(frames[idx]).to(device)
        z = tuned(images)  # [B, N, D]
        loss = F.smooth_l1_loss(head.normalized(z), y[idx], beta=cfg.smooth_l1_beta)
        if keep:
            with torch.no_grad():
                z_ref = reference(images)
            loss = loss + cfg.keep_weight * (z - z_ref).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        loss_val = float(loss.detach())
        if (step + 1) % 500 == 0:
            log(f"[readout] step {step + 1}: loss={loss_val:.4g}")
    tuned.eval().requires_grad_(False)
    head.eval()
    val_frames, val_targets = val
    # The same measure on as many training frames: a held-out error far above it means the head learned where
    # the objects were in the recorded episodes, which more steps do not mend and more episodes do.
    pick = torch.randperm(frames.shape[0], generator=torch.Generator().manual_seed(cfg.seed))
    pick = pick[:max(1, min(frames.shape[0], val_frames.shape[0], TRAIN_ERROR_FRAMES))]
    z_val, z_fit = encode_frames(tuned, val_frames, device), encode_frames(tuned, frames[pick], device)
    val_error = readout_errors_mm(head, z_val, val_targets.to(device))
    fit_error = readout_errors_mm(head, z_fit, targets[pick.to(targets.device)])
    ratio = sum(val_error.values()) / max(sum(fit_error.values()), 1e-9)
    metrics = {"steps": cfg.steps, "lr": cfg.lr, "batch_size": cfg.batch_size, "final_loss": loss_val,
               "train_s": round(time.perf_counter() - t0, 1), "val_error_mm": val_error,
               "train_error_mm": fit_error, "val_to_train_error": ratio}
    log(f"[readout] held-out error (mm): {val_error}; on {len(pick)} training frames: {fit_error}")
    if ratio > OVERFIT_RATIO:
        log(f"[readout] the held-out error is {ratio:.1f} x the training frames': the head has learned where the "
            "objects were in the recorded episodes. Record more episodes, with the objects at more places; "
            "more steps will not close this gap")
    return tuned, head, metrics
