"""Bench section "training": samples/s of both training stages for the default (tiny) config on this machine.

Both stages run on the synthetic square dataset with their default batch sizes; only optimiser steps are
timed (not data preparation, validation or saving). torch uses 2 threads, as on the target CPU.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Dict

import torch

from ami_world_model.data.synthetic import make_synthetic
from ami_world_model.models.checkpoint import checkpoint_paths, save_world_model
from ami_world_model.models.config import WorldModelConfig
from ami_world_model.models.jepa import JepaPredictor
from ami_world_model.models.world_model import WorldModel
from ami_world_model.training.train_encoder import EncoderTrainConfig, train_encoder
from ami_world_model.training.train_predictor import PredictorTrainConfig, train_predictor


def _params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def run(quick: bool = False) -> Dict[str, Any]:
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        cfg = WorldModelConfig.tiny()
        data = make_synthetic(episodes=8, length=24, seed=0)
        enc_cfg = EncoderTrainConfig(steps=6 if quick else 30, warmup_steps=1, val_every=0, seed=0)
        encoder, enc_m = train_encoder(data, enc_cfg, show_progress=False, log=lambda s: None)
        pred_cfg = PredictorTrainConfig(steps=10 if quick else 60, warmup_steps=1, val_every=0, seed=0)
        wm, pred_m = train_predictor(data, encoder, pred_cfg, show_progress=False, log=lambda s: None)
        with tempfile.TemporaryDirectory() as tmp:
            stem = save_world_model(wm, Path(tmp) / "wm")
            ckpt_mb = sum(p.stat().st_size for p in checkpoint_paths(stem)) / 2**20
        model = WorldModel(cfg)
        jepa_pred = JepaPredictor(enc_cfg.jepa, cfg.latent_dim, tuple(cfg.encoder.grid(cfg.image)))
        return {
            "train_encoder_samples_per_s": round(float(enc_m["train_samples_per_s"]), 1),
            "train_predictor_samples_per_s": round(float(pred_m["train_samples_per_s"]), 1),
            "train_encoder_batch_size": enc_cfg.batch_size,
            "train_predictor_batch_size": pred_cfg.batch_size,
            "train_predictor_horizon": pred_cfg.horizon,
            "model_encoder_params": _params(model.encoder),
            "model_predictor_params": _params(model.predictor),
            "model_jepa_predictor_params": _params(jepa_pred),
            "model_checkpoint_mb": round(ckpt_mb, 2),
            "model_latent_tokens": cfg.num_latents,
            "model_latent_dim": cfg.latent_dim,
            # other processes share this CPU: the 1-minute load average says how much they took
            "train_bench_load_avg_1m": round(os.getloadavg()[0], 2),
        }
    finally:
        torch.set_num_threads(threads)
