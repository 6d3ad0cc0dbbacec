"""Stage 2b: the read-out-space dynamics head (``models/pose_dynamics.py``), from the recorded poses.

It learns from the same episodes' pose targets (what the read-out head learns to see), the proprioceptive
state and the commands, one recorded control period at a time. The validation reports the held-out error of a
whole model step (``substeps`` periods, the recorded commands applied in turn) per object, beside the error of
predicting no motion, so a head that learnt nothing is seen as such.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ami_world_model.data.episodes import EpisodeSet
from ami_world_model.models.config import PoseDynamicsConfig
from ami_world_model.models.pose_dynamics import PoseDynamics
from ami_world_model.models.readout import per_object_distance


@dataclass
class PoseDynamicsTrainConfig:
    frame: Optional[List[str]] = None  # [origin, heading] read-out objects; None / empty: no head
    steps: int = 15000
    batch_size: int = 256
    lr: float = 1e-3
    hidden: int = 256
    depth: int = 3
    planar_state: bool = True
    walls: List[List[float]] = field(default_factory=list)  # PoseDynamicsConfig.walls
    wall_range: float = 0.2
    smooth_l1_beta: float = 0.1  # on normalised outputs
    seed: int = 0


Transitions = Tuple[Tensor, Optional[Tensor], Tensor, Tensor, Optional[Tensor]]


def transitions(data: EpisodeSet) -> Transitions:
    """Every recorded period of every episode: (positions, state, command, next positions, next state)."""
    if not data.target_names:
        raise ValueError("pose dynamics need pose targets (--pose-topic)")
    p, s, a, q, r = [], [], [], [], []
    for e in data.episodes:
        n = len(e.targets) - 1
        p.append(e.targets[:n])
        q.append(e.targets[1:n + 1])
        a.append(e.actions[:n])
        if e.states is not None:
            s.append(e.states[:n])
            r.append(e.states[1:n + 1])
    with_state = data.state_spec.dim > 0

    def cat(xs: List[np.ndarray]) -> Tensor:
        return torch.from_numpy(np.concatenate(xs).astype(np.float32))

    return cat(p), cat(s) if with_state else None, cat(a), cat(q), cat(r) if with_state else None


def _pick(x: Optional[Tensor], idx: Tensor) -> Optional[Tensor]:
    return None if x is None else x[idx]


@torch.no_grad()
def step_errors_mm(head: PoseDynamics, data: EpisodeSet, objects: List[str], max_starts: int = 4096
                   ) -> Dict[str, Dict[str, float]]:
    """Held-out error per object (mm) after one model step (``substeps`` periods, recorded commands), and
    the no-motion baseline's, over up to ``max_starts`` starts."""
    k = head.cfg.substeps
    starts = [(i, t) for i, e in enumerate(data.episodes) for t in range(len(e.targets) - k)]
    if not starts:
        return {}
    chosen = [starts[j] for j in np.random.default_rng(0).permutation(len(starts))[:max_starts]]

    def gather(field: str, offset: int) -> Tensor:  # [n, .] the field ``offset`` records after each start
        return torch.from_numpy(np.stack([getattr(data.episodes[i], field)[t + offset] for i, t in chosen])
                                .astype(np.float32))

    p0, end = gather("targets", 0), gather("targets", k)
    state = gather("states", 0) if head.state_dim else None
    pos = p0
    for u in range(k):
        pos, state = head(pos, state, gather("actions", u))
    err = per_object_distance(pos, end).mean(0) * 1e3
    still = per_object_distance(p0, end).mean(0) * 1e3
    return {"predicted": {o: float(v) for o, v in zip(objects, err)},
            "no_motion": {o: float(v) for o, v in zip(objects, still)}}


def fit_pose_dynamics(train: EpisodeSet, val: EpisodeSet, objects: List[str], substeps: int,
                      cfg: PoseDynamicsTrainConfig, device: torch.device, log: Callable[[str], None] = print
                      ) -> Tuple[PoseDynamics, PoseDynamicsConfig]:
    """Fit a head on ``train``'s periods (normalisation measured on them); its config carries the held-out
    step errors (``val``, or ``train`` when there is no validation set)."""
    if not cfg.frame:
        raise ValueError("fit_pose_dynamics needs cfg.frame, the [origin, heading] objects of the pushed body")
    torch.manual_seed(cfg.seed)
    pos, st, act, nxt, nst = transitions(train)
    base = PoseDynamicsConfig(frame=list(cfg.frame), hidden=cfg.hidden, depth=cfg.depth, substeps=substeps,
                              planar_state=cfg.planar_state, walls=[list(w) for w in cfg.walls],
                              wall_range=cfg.wall_range)
    state_dim, action_dim = (0 if st is None else st.shape[1]), act.shape[1]
    probe = PoseDynamics(base, objects, state_dim, action_dim)  # unnormalised: measures the scales
    feats = probe.features(pos, st, act)
    outs = probe.targets(pos, st, nxt, nst)
    pdcfg = replace(base, in_mean=[float(x) for x in feats.mean(0)],
                    in_std=[float(x) for x in feats.std(0).clamp_min(1e-6)],
                    out_std=[float(x) for x in outs.std(0).clamp_min(1e-6)])
    head = PoseDynamics(pdcfg, objects, state_dim, action_dim).to(device)
    y = (outs / head.out_std.cpu()).to(device)
    pos, act = pos.to(device), act.to(device)
    st = None if st is None else st.to(device)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(cfg.seed)
    t0, loss_val = time.perf_counter(), float("nan")
    for step in range(cfg.steps):
        for group in opt.param_groups:  # cosine to zero: the last steps settle a small, noisy regression
            group["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / max(cfg.steps, 1)))
        idx = torch.randint(pos.shape[0], (cfg.batch_size,), generator=gen).to(device)
        pred = head.normalized(pos[idx], _pick(st, idx), act[idx])
        loss = F.smooth_l1_loss(pred, y[idx], beta=cfg.smooth_l1_beta)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_val = float(loss.detach())
        if (step + 1) % 5000 == 0:
            log(f"[pose dynamics] step {step + 1}: loss={loss_val:.4g}")
    head.eval().cpu()
    errors = step_errors_mm(head, val if val.episodes else train, objects)
    pdcfg.metrics = {"steps": cfg.steps, "final_loss": loss_val, "train_s": round(time.perf_counter() - t0, 1),
                     "transitions": int(pos.shape[0]), "val_on_train": not val.episodes,
                     "val_step_error_mm": errors}
    head.cfg = pdcfg
    log(f"[pose dynamics] held-out error after one model step (mm): {errors}")
    return head, pdcfg
