"""Bench section "inference": encoder latency (torch eager vs ONNX Runtime, batch 1) and predictor
throughput at the planner's batch, on this machine's CPU, for the default (tiny) model.

Weights do not change latency, so an untrained model built from ``WorldModelConfig.tiny()`` is used.
Each figure is the median of repeated calls after warm-up; both backends run in this process, now.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from typing import Any, Callable, Dict

import torch

from ami_world_model.inference.backends import default_max_batch, make_backend
from ami_world_model.models.config import WorldModelConfig
from ami_world_model.models.world_model import WorldModel


def _median_ms(fn: Callable[[], Any], repeats: int, warmup: int = 3, warmup_s: float = 0.3) -> float:
    # Warm up by count and by time: the first calls pay one-off costs (oneDNN kernel selection, thread
    # pool start, ORT arena growth) that are not the steady state the planner sees.
    t_end = time.perf_counter() + warmup_s
    n = 0
    while n < warmup or time.perf_counter() < t_end:
        fn()
        n += 1
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def run(quick: bool = False) -> Dict[str, Any]:
    """Returns encoder_torch_ms, encoder_onnxruntime_ms, encoder_torch_over_onnxruntime,
    predictor_batch_per_s (fastest CPU backend) and per-backend predictor figures."""
    repeats_enc, repeats_pred = (10, 3) if quick else (50, 10)
    torch.manual_seed(0)
    model = WorldModel(WorldModelConfig.tiny()).eval()
    cfg = model.config
    batch = default_max_batch()
    images = torch.rand(1, 3, cfg.image.height, cfg.image.width)
    z = torch.randn(batch, cfg.context_frames, cfg.num_latents, cfg.latent_dim)
    actions = 0.05 * torch.randn(batch, cfg.context_frames, cfg.action.dim)
    out: Dict[str, Any] = {"inference_model": "tiny (untrained)", "predictor_batch": batch,
                           "inference_torch_threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as cache, torch.no_grad():
        for kind in ("torch", "onnxruntime"):
            backend = make_backend(model, kind=kind, cache_dir=cache)
            out[f"encoder_{kind}_ms"] = round(_median_ms(lambda b=backend: b.encode(images), repeats_enc), 3)
            pred_ms = _median_ms(lambda b=backend: b.next(z, actions), repeats_pred)
            out[f"predictor_{kind}_ms"] = round(pred_ms, 3)
            out[f"predictor_{kind}_batch_per_s"] = round(1e3 / pred_ms, 2)
            backend.close()
    out["encoder_torch_over_onnxruntime"] = round(out["encoder_torch_ms"] / out["encoder_onnxruntime_ms"], 2)
    out["predictor_torch_over_onnxruntime"] = round(out["predictor_torch_ms"] / out["predictor_onnxruntime_ms"], 2)
    # The headline: batches/s of whichever backend `auto` would use on this CPU (ONNX Runtime when installed).
    out["predictor_batch_per_s"] = max(out["predictor_torch_batch_per_s"], out["predictor_onnxruntime_batch_per_s"])
    return out
