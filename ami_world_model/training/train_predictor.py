"""Stage 2: the action-conditioned predictor on top of a frozen JEPA encoder.

Latents of every frame are computed once with the frozen encoder, then training runs on latent windows of
k + H frames: L1 teacher forcing (every ground-truth k-frame context predicts its next frame) plus an L1
H-step autoregressive rollout loss (the planner rolls the model out, so it is trained to). Validation on
held-out episodes also measures the copy baseline ("the latent does not change"); the ratio is stored in the
checkpoint metrics, and ``val_one_step_l1`` is the planner node's scale for "the model is surprised".

With pose targets, stage 1b (``train_readout.py``) first fine-tunes the encoder with a read-out head; with a
body frame as well, stage 2b (``train_pose_dynamics.py``) fits the read-out-space dynamics head on the
recorded poses. Both are stored in the same checkpoint.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel as DDP

from ami_world_model.config import ActionSpec, StateSpec, to_dict
from ami_world_model.data.episodes import EpisodeSet
from ami_world_model.data.frame_skip import every_step_mean_action
from ami_world_model.models.checkpoint import load_encoder, save_world_model
from ami_world_model.models.config import PredictorConfig, WorldModelConfig
from ami_world_model.models.encoder import Encoder
from ami_world_model.models.world_model import WorldModel
from ami_world_model.training import common
from ami_world_model.training.losses import (
    copy_baseline,
    predictor_and_readout_losses,
    predictor_losses,
    rollout_predictions,
)
from ami_world_model.training.train_pose_dynamics import PoseDynamicsTrainConfig, fit_pose_dynamics
from ami_world_model.training.train_readout import (
    ReadoutTrainConfig,
    fit_readout,
    readout_config,
    readout_errors_mm,
)
from ami_world_model.training.windows import (
    Windows,
    encode_frames,
    frames_uint8,
    make_windows,
    split_episodes,
    targets_array,
)


@dataclass
class PredictorTrainConfig:
    steps: int = 3000  # total optimiser steps
    batch_size: int = 64  # windows per process
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 100
    context_frames: int = 1  # k
    horizon: int = 3  # H: rollout steps trained (and validated)
    rollout_weight: float = 1.0  # loss = teacher forcing + rollout_weight * rollout
    # 0 = plain L1 (V-JEPA 2-AC). Most latent tokens do not change from one frame to the next, and L1's
    # optimum there is the median, "no change", which stalls learning at the copy baseline; smooth-L1 with
    # beta above the typical error (~0.02-0.05 for LayerNorm-ed latents) trains like L2 near the target.
    smooth_l1_beta: float = 0.1
    frame_skip: int = 1
    val_every: int = 500
    val_fraction: float = 0.15
    seed: int = 0
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    # With recorded poses (--pose-topic): fine-tune the encoder with a read-out head first (train_readout.py),
    # then add the read-out of the rolled-out latents to the predictor's loss with this weight.
    readout: ReadoutTrainConfig = field(default_factory=ReadoutTrainConfig)
    readout_loss_weight: float = 0.5
    # With poses and a body frame (--pose-dynamics-frame): the read-out-space dynamics head (stage 2b).
    pose_dynamics: PoseDynamicsTrainConfig = field(default_factory=PoseDynamicsTrainConfig)


class _PredStep(nn.Module):
    """DDP wraps this: forward = both losses (encoder frozen, so only predictor gradients are reduced)."""

    def __init__(self, model: WorldModel, beta: float) -> None:
        super().__init__()
        self.model, self.beta = model, beta

    def forward(self, z: Tensor, a: Tensor, s: Optional[Tensor], t: Optional[Tensor]
                ) -> Tuple[Tensor, Tensor, Tensor]:
        return predictor_and_readout_losses(self.model, z, a, s, t, self.beta)


def _quiet(_: str) -> None:
    pass


def _spec_from_data(data: EpisodeSet, frame_skip: int) -> Tuple[ActionSpec, StateSpec]:
    """ActionSpec / StateSpec with mean and std measured on the training data (kept in the checkpoint). The
    action's are those of the model step's action: the mean command over ``frame_skip`` records, from every
    start (what the training windows feed the predictor)."""
    acts = every_step_mean_action(data.episodes, frame_skip).astype(np.float64)
    spec = copy.deepcopy(data.action_spec)
    span = np.asarray(spec.high) - np.asarray(spec.low)
    spec.mean = [float(x) for x in acts.mean(0)]
    spec.std = [float(x) for x in np.maximum(acts.std(0), 1e-3 * span)]  # floor: a constant action dim
    spec.dt_s = float(spec.dt_s * frame_skip)
    state = copy.deepcopy(data.state_spec)
    if state.dim:
        sts = np.concatenate([e.states for e in data.episodes if e.states is not None]).astype(np.float64)
        state.mean = [float(x) for x in sts.mean(0)]
        state.std = [float(x) for x in np.maximum(sts.std(0), 1e-6)]
    return spec, state


def _batch(lat: Tensor, win: Windows, idx: np.ndarray, device: torch.device
           ) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
    z = lat[torch.from_numpy(win.frame_index[idx])]  # [B, L, N, D]
    a = torch.from_numpy(win.actions[idx]).to(device)  # [B, L, A]
    s = None if win.states is None else torch.from_numpy(win.states[idx]).to(device)
    return z.to(device), a, s


def _targets(win: Windows, idx: np.ndarray, device: torch.device) -> Optional[Tensor]:
    return None if win.targets is None else torch.from_numpy(win.targets[idx]).to(device)  # [B, L, P]


def _rollouts(model: WorldModel, z: Tensor, a: Tensor, s: Optional[Tensor], chunk: int = 256):
    for i in range(0, z.shape[0], chunk):
        yield rollout_predictions(model, z[i:i + chunk], a[i:i + chunk], None if s is None else s[i:i + chunk])


@torch.no_grad()
def evaluate(model: WorldModel, lat: Tensor, win: Windows, device: torch.device, max_windows: int = 1024
             ) -> Dict[str, Any]:
    """Held-out one-step and per-horizon L1, with the copy baseline measured on the same windows."""
    model.eval()
    n = min(len(win), max_windows)
    idx = np.random.default_rng(0).permutation(len(win))[:n]
    k = model.config.context_frames
    tf_sum, roll_sum, copy1_sum, copyh_sum = 0.0, None, 0.0, None
    for chunk in np.array_split(idx, max(1, n // 256)):
        z, a, s = _batch(lat, win, chunk, device)
        tf, per_h = predictor_losses(model, z, a, s)
        c1, ch = copy_baseline(z, k)
        w = len(chunk) / n
        tf_sum += float(tf) * w
        copy1_sum += float(c1) * w
        roll_sum = per_h * w if roll_sum is None else roll_sum + per_h * w
        copyh_sum = ch * w if copyh_sum is None else copyh_sum + ch * w
    readout: Dict[str, Any] = {}
    if model.readout is not None and win.targets is not None:
        z, a, s = _batch(lat, win, idx, device)
        t = torch.from_numpy(win.targets[idx]).to(device)
        pred = torch.cat([p for p in _rollouts(model, z, a, s)])  # [n, H, N, D]
        readout = {"encoded": readout_errors_mm(model.readout, z[:, k], t[:, k]),
                   **{f"predicted_step{h + 1}": readout_errors_mm(model.readout, pred[:, h], t[:, k + h])
                      for h in range(pred.shape[1])}}
    model.train()
    model.encoder.eval()
    return {
        "val_readout_error_mm": readout,
        "val_one_step_l1": tf_sum,
        "val_copy_one_step_l1": copy1_sum,
        "val_one_step_ratio_to_copy": tf_sum / max(copy1_sum, 1e-12),
        "val_rollout_l1": [float(x) for x in roll_sum],
        "val_copy_rollout_l1": [float(x) for x in copyh_sum],
        "val_windows": n,
    }


def train_predictor(data: EpisodeSet, encoder: Union[Encoder, str, Path], cfg: PredictorTrainConfig,
                    out: Optional[Path] = None, resume: bool = False, ctx: Optional[common.DistContext] = None,
                    show_progress: bool = True, stop_at: Optional[int] = None, log: Callable[[str], None] = print
                    ) -> Tuple[WorldModel, Dict[str, Any]]:
    """Train the AC predictor; (rank 0, when ``out``) save a full world model checkpoint + resume state."""
    ctx = ctx or common.DistContext()
    enc_source = str(encoder) if not isinstance(encoder, Encoder) else "<in memory>"
    if not isinstance(encoder, Encoder):
        encoder, _ = load_encoder(encoder)
    train_set, val_set = split_episodes(data, cfg.val_fraction)
    action, state = _spec_from_data(train_set, cfg.frame_skip)
    wcfg = WorldModelConfig(image=copy.deepcopy(encoder.image), action=action, state=state,
                            encoder=copy.deepcopy(encoder.cfg), predictor=copy.deepcopy(cfg.predictor),
                            context_frames=cfg.context_frames, data=data.summary())
    names = list(train_set.target_names) if cfg.readout.steps > 0 else []
    train_frames = frames_uint8(train_set, wcfg.image)  # [F, 3, H, W]: read once, for the read-out and latents
    val_frames = frames_uint8(val_set, wcfg.image) if val_set.episodes else None
    head = None
    if names:  # stage 1b: fine-tune the encoder with a read-out head (deterministic: a resume redoes it)
        train_targets = targets_array(train_set)
        wcfg.readout = readout_config(names, train_targets.numpy(), cfg.readout)
        held = (val_frames, targets_array(val_set)) if val_frames is not None else (train_frames, train_targets)
        encoder, head, ro_metrics = fit_readout(
            encoder, train_frames, train_targets, wcfg.readout, cfg.readout, ctx.device, held, wcfg.num_latents,
            log if ctx.is_main else _quiet)
        wcfg.readout.metrics = ro_metrics
    pose_head = None
    if cfg.pose_dynamics.frame:  # stage 2b, on the recorded poses (deterministic too)
        if not names:
            raise ValueError("pose dynamics (--pose-dynamics-frame) need pose targets and a read-out "
                             "(--pose-topic, --readout-steps > 0)")
        wcfg.pose_dynamics = replace(wcfg.pose_dynamics, frame=list(cfg.pose_dynamics.frame))
        wcfg.check_pose_dynamics()  # a frame that names no read-out object fails before the fit
        pose_head, wcfg.pose_dynamics = fit_pose_dynamics(
            train_set, val_set, wcfg.readout.objects(), cfg.frame_skip, cfg.pose_dynamics, ctx.device,
            log if ctx.is_main else _quiet)
    torch.manual_seed(cfg.seed)
    model = WorldModel(wcfg)
    if pose_head is not None and model.pose_dynamics is not None:
        model.pose_dynamics.load_state_dict(pose_head.state_dict())
        model.pose_dynamics.requires_grad_(False)
    model.encoder.load_state_dict(encoder.state_dict())
    model.encoder.requires_grad_(False)
    if head is not None and model.readout is not None:
        model.readout.load_state_dict(head.state_dict())
        model.readout.requires_grad_(False)  # fixed: the predictor learns to feed it
    model.to(ctx.device)
    length = cfg.context_frames + cfg.horizon
    lat = encode_frames(model.encoder, train_frames, ctx.device)
    win = make_windows(train_set, length, cfg.frame_skip)
    val_on_train = val_frames is None
    if val_on_train:
        val_lat, val_win = lat, win
    else:
        val_lat = encode_frames(model.encoder, val_frames, ctx.device)
        val_win = make_windows(val_set, length, cfg.frame_skip)
    params = [p for p in model.predictor.parameters()]
    decay = [p for p in params if p.ndim >= 2 and p.shape[0] > 1]
    other = [p for p in params if not (p.ndim >= 2 and p.shape[0] > 1)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": other, "weight_decay": 0.0}], lr=cfg.lr)
    start = 0
    if resume:
        if out is None:
            raise ValueError("resume needs the output path of the run to continue")
        start, _ = common.load_train_state(out, model.predictor, opt)
    step_module: nn.Module = _PredStep(model, cfg.smooth_l1_beta)
    if ctx.enabled:
        step_module = DDP(step_module, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    model.train()
    model.encoder.eval()
    history: List[Dict[str, Any]] = []
    bar = common.progress(cfg.steps, start, ctx, "predictor") if show_progress else None
    train_s, n_samples, loss_val = 0.0, 0, float("nan")
    # stop_at: end this process early (a time-boxed job); the LR / EMA schedules still follow cfg.steps
    for step in range(start, min(cfg.steps, stop_at or cfg.steps)):
        t_step = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = common.lr_at(step, cfg.steps, cfg.lr, cfg.warmup_steps)
        idx = common.global_batch(len(win), cfg.batch_size, cfg.seed, step, ctx).numpy()
        z, a, s = _batch(lat, win, idx, ctx.device)
        tf, per_h, ro = step_module(z, a, s, _targets(win, idx, ctx.device))
        loss = tf + cfg.rollout_weight * per_h.mean() + cfg.readout_loss_weight * ro
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.predictor.parameters(), 1.0)
        opt.step()
        train_s += time.perf_counter() - t_step  # step time only (not validation or saving)
        n_samples += cfg.batch_size * ctx.world_size
        loss_val = float(loss.detach())
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss_val:.4f}")
        last = step + 1 == min(cfg.steps, stop_at or cfg.steps)
        if (cfg.val_every > 0 and (step + 1) % cfg.val_every == 0) or last:
            rec = {"step": step + 1, "train_loss": common.average_scalar(loss_val, ctx),
                   **evaluate(model, val_lat, val_win, ctx.device)}
            history.append(rec)
            if ctx.is_main:
                log(f"[predictor] step {step + 1}: loss={rec['train_loss']:.4g} "
                    f"val_one_step_l1={rec['val_one_step_l1']:.4g} (copy {rec['val_copy_one_step_l1']:.4g}) "
                    f"rollout={[round(x, 4) for x in rec['val_rollout_l1']]}")
                if out is not None:
                    common.save_train_state(out, model.predictor, opt, step + 1, {"kind": "predictor"})
    if bar is not None:
        bar.close()
    elapsed = train_s
    metrics: Dict[str, Any] = dict(history[-1]) if history else evaluate(model, val_lat, val_win, ctx.device)
    metrics.pop("step", None)
    metrics.update(horizon=cfg.horizon, val_on_train=val_on_train, steps=cfg.steps,
                   train_samples_per_s=n_samples / elapsed if elapsed > 0 and n_samples else None)
    model.config.metrics = metrics
    model.eval()
    if out is not None and ctx.is_main:
        save_world_model(model, out, extra={"train": to_dict(cfg), "encoder_checkpoint": enc_source,
                                            "history": history})
        log(f"[predictor] wrote {out}.safetensors / .json")
    return model, metrics
