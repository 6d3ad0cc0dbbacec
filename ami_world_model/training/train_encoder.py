"""Stage 1: JEPA pretraining of the ViT encoder on frames (no actions needed).

The step reads like the paper: sample masks, forward the EMA target on the full image, forward the context
encoder on the visible patches and the predictor at the masked ones, L1 loss, backward, EMA update. The
encoder that is saved is the EMA target (the I-JEPA convention: it is the smoother of the two).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel as DDP

from ami_world_model.config import ImageSpec, to_dict
from ami_world_model.data.episodes import EpisodeSet
from ami_world_model.models.checkpoint import save_encoder
from ami_world_model.models.config import EncoderConfig, JepaConfig
from ami_world_model.models.encoder import Encoder
from ami_world_model.models.jepa import JEPA, MaskConfig, collapse_stats, ema_momentum, multiblock_masks
from ami_world_model.training import common
from ami_world_model.training.windows import frames_uint8, split_episodes, to_float


@dataclass
class EncoderTrainConfig:
    steps: int = 3000  # total optimiser steps (a resumed run continues up to this)
    batch_size: int = 32  # per process
    lr: float = 1e-3
    weight_decay: float = 0.04
    warmup_steps: int = 100
    ema_start: float = 0.996  # target momentum schedule start -> end (I-JEPA)
    ema_end: float = 1.0
    val_every: int = 500
    val_fraction: float = 0.15  # last episodes held out
    seed: int = 0
    image: ImageSpec = field(default_factory=ImageSpec)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    jepa: JepaConfig = field(default_factory=JepaConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)


class _JepaStep(nn.Module):
    """DDP needs the trained computation behind ``forward``."""

    def __init__(self, jepa: JEPA) -> None:
        super().__init__()
        self.jepa = jepa

    def forward(self, images: Tensor, ctx_idx: Tensor, tgt_idx: Tensor) -> Tuple[Tensor, Tensor]:
        return self.jepa.loss(images, ctx_idx, tgt_idx)


def _param_groups(model: nn.Module, wd: float) -> List[Dict[str, Any]]:
    # no weight decay on biases, norms and position / mask tokens (1-D or broadcast parameters)
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2 and p.shape[0] > 1]
    other = [p for p in model.parameters() if p.requires_grad and not (p.ndim >= 2 and p.shape[0] > 1)]
    return [{"params": decay, "weight_decay": wd}, {"params": other, "weight_decay": 0.0}]


@torch.no_grad()
def evaluate(jepa: JEPA, frames: Tensor, cfg: EncoderTrainConfig, device: torch.device,
             max_frames: int = 128) -> Dict[str, float]:
    """Validation JEPA loss with fixed masks, and collapse stats of the target's pooled latents."""
    jepa.eval()
    g = torch.Generator().manual_seed(12345)
    sel = torch.randperm(frames.shape[0], generator=g)[:max_frames]
    imgs = to_float(frames[sel]).to(device)
    ctx_idx, tgt_idx = multiblock_masks(imgs.shape[0], jepa.encoder.grid, g, cfg.mask)
    loss, h = jepa.loss(imgs, ctx_idx.to(device), tgt_idx.to(device))
    stats = collapse_stats(jepa.target.pool(h))
    jepa.train()
    return {"val_loss": float(loss), **{f"val_{k}": v for k, v in stats.items()}}


def train_encoder(data: EpisodeSet, cfg: EncoderTrainConfig, out: Optional[Path] = None, resume: bool = False,
                  ctx: Optional[common.DistContext] = None, show_progress: bool = True,
                  stop_at: Optional[int] = None,
                  log: Callable[[str], None] = print) -> Tuple[Encoder, Dict[str, Any]]:
    """Train and (rank 0, when ``out``) save ``<out>.safetensors/.json`` (kind "encoder") + resume state.

    Returns the EMA target encoder and a metrics dict (final losses, collapse stats, history).
    """
    ctx = ctx or common.DistContext()
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank (DDP also broadcasts rank 0's)
    train_set, val_set = split_episodes(data, cfg.val_fraction)
    frames = frames_uint8(train_set, cfg.image)
    val_frames = frames_uint8(val_set, cfg.image) if val_set.episodes else frames
    jepa = JEPA(Encoder(cfg.encoder, cfg.image), cfg.jepa).to(ctx.device)
    opt = torch.optim.AdamW(_param_groups(jepa, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.95))
    start = 0
    if resume:
        if out is None:
            raise ValueError("resume needs the output path of the run to continue")
        start, _ = common.load_train_state(out, jepa, opt)
    step_module: nn.Module = _JepaStep(jepa)
    if ctx.enabled:
        step_module = DDP(step_module, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    history: List[Dict[str, float]] = []
    bar = common.progress(cfg.steps, start, ctx, "jepa") if show_progress else None
    train_s, n_samples = 0.0, 0
    loss_val = float("nan")
    jepa.train()
    # stop_at: end this process early (a time-boxed job); the LR / EMA schedules still follow cfg.steps
    for step in range(start, min(cfg.steps, stop_at or cfg.steps)):
        t_step = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = common.lr_at(step, cfg.steps, cfg.lr, cfg.warmup_steps)
        idx = common.global_batch(frames.shape[0], cfg.batch_size, cfg.seed, step, ctx)
        images = to_float(frames[idx]).to(ctx.device)  # [B, 3, H, W]
        ctx_idx, tgt_idx = multiblock_masks(cfg.batch_size, jepa.encoder.grid,
                                            common.step_generator(cfg.seed, step, ctx.rank), cfg.mask)
        loss, _ = step_module(images, ctx_idx.to(ctx.device), tgt_idx.to(ctx.device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(jepa.parameters(), 1.0)
        opt.step()
        momentum = ema_momentum(step + 1, cfg.steps, cfg.ema_start, cfg.ema_end)
        jepa.update_target(momentum)
        train_s += time.perf_counter() - t_step  # step time only (not validation or saving)
        n_samples += cfg.batch_size * ctx.world_size
        loss_val = float(loss.detach())
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss_val:.4f}", m=f"{momentum:.4f}")
        last = step + 1 == min(cfg.steps, stop_at or cfg.steps)
        if cfg.val_every > 0 and ((step + 1) % cfg.val_every == 0 or last):
            rec = {"step": step + 1, "train_loss": common.average_scalar(loss_val, ctx), "momentum": momentum,
                   **evaluate(jepa, val_frames, cfg, ctx.device)}
            history.append(rec)
            if ctx.is_main:
                log(f"[jepa] step {step + 1}: " + ", ".join(f"{k}={v:.4g}" for k, v in rec.items() if k != "step"))
                if out is not None:
                    common.save_train_state(out, jepa, opt, step + 1, {"kind": "encoder"})
    if bar is not None:
        bar.close()
    elapsed = train_s
    metrics: Dict[str, Any] = {
        "steps": cfg.steps,
        "final_train_loss": loss_val,
        "train_samples_per_s": n_samples / elapsed if elapsed > 0 and n_samples else None,
        "history": history,
    }
    if history:
        metrics.update({k: v for k, v in history[-1].items() if k.startswith("val_")})
    if out is not None and ctx.is_main:
        save_encoder(jepa.target, out, extra={"metrics": metrics, "data": data.summary(), "train": to_dict(cfg)})
        log(f"[jepa] wrote {out}.safetensors / .json")
    return jepa.target.eval(), metrics
