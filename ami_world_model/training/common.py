"""Shared training plumbing: torchrun/DDP context, seeded per-step sampling, LR schedule, resumable state.

Resume state is ``<out>.train.safetensors`` + ``<out>.train.json`` (model + optimizer tensors, step): no
pickle anywhere. Every step draws its batch from a generator seeded by (seed, step), so a resumed run takes
the same batches as an uninterrupted one.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch import nn

from ami_world_model.models.checkpoint import CheckpointError


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistContext:
    """Join the torchrun process group when launched by torchrun (gloo on CPU, nccl on GPU)."""
    want_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return DistContext(device=torch.device("cuda" if want_cuda else "cpu"))
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if want_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if want_cuda else "gloo")
    return DistContext(rank=rank, world_size=world, device=dev)


def close_distributed(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """A generator that depends only on (seed, step, rank)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 97 + rank)


def global_batch(n: int, batch_size: int, seed: int, step: int, ctx: DistContext) -> torch.Tensor:
    """This rank's share of a global batch of ``batch_size * world_size`` sample indices (ranks disjoint)."""
    g = step_generator(seed, step)
    idx = torch.randint(0, n, (batch_size * ctx.world_size,), generator=g)
    return idx[ctx.rank * batch_size:(ctx.rank + 1) * batch_size]


def lr_at(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warmup then cosine decay to 10% of ``base``."""
    if step < warmup:
        return base * (step + 1) / warmup
    frac = (step - warmup) / max(total - warmup, 1)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))


def average_scalar(x: float, ctx: DistContext) -> float:
    if not ctx.enabled:
        return x
    t = torch.tensor([x], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return float(t.item()) / ctx.world_size


def state_paths(out: Path) -> Tuple[Path, Path]:
    return out.with_name(out.name + ".train.safetensors"), out.with_name(out.name + ".train.json")


def save_train_state(out: Path, model: nn.Module, opt: torch.optim.Optimizer, step: int,
                     meta: Dict[str, Any]) -> None:
    """Everything needed to resume: model + optimizer tensors (safetensors), step and meta (JSON)."""
    weights, meta_path = state_paths(out)
    weights.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    osd = opt.state_dict()
    for pid, st in osd["state"].items():
        for name, val in st.items():
            tensors[f"optim.{pid}.{name}"] = torch.as_tensor(val).detach().cpu().contiguous().clone()
    save_file(tensors, str(weights))
    info = {"format_version": 1, "step": step, "param_groups": osd["param_groups"], "meta": meta}
    meta_path.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")


def load_train_state(out: Path, model: nn.Module, opt: torch.optim.Optimizer) -> Tuple[int, Dict[str, Any]]:
    """Restore a state written by save_train_state; returns (step, meta)."""
    weights, meta_path = state_paths(out)
    if not (weights.exists() and meta_path.exists()):
        raise CheckpointError(f"cannot resume: {weights} / {meta_path} not found")
    try:
        info = json.loads(meta_path.read_text())
        tensors = load_file(str(weights))
    except Exception as e:  # noqa: BLE001 - any parse failure is a corrupt resume state
        raise CheckpointError(f"cannot resume from {weights}: corrupt state ({e})") from e
    if info.get("format_version") != 1:
        raise CheckpointError(f"{meta_path}: unknown training state format_version {info.get('format_version')!r}")
    msd = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(msd, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{weights}: resume state does not match this model: {e}") from e
    state: Dict[int, Dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, pid, name = k.split(".", 2)
            state.setdefault(int(pid), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": info["param_groups"]})
    return int(info["step"]), info.get("meta", {})


def progress(total: int, initial: int, ctx: DistContext, desc: str) -> Optional[Any]:
    """A tqdm bar on rank 0 (None elsewhere)."""
    if not ctx.is_main:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, leave=False)
