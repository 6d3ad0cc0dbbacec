"""The peer: stable-worldmodel's LeWM (and PLDM), built from the package's modules, trained by our own loop.

The package ships the model classes (``wm/lewm``, ``wm/pldm``) and the losses (``SIGReg``, ``PLDMLoss``), but
its training loop lives in the authors' scripts (hydra + lightning + stable-pretraining), not in the package.
This module builds the model the way the authors' ``scripts/train/lewm.py`` does (a ``transformers`` ViT
encoder, CLS token, projector / predictor-projector MLPs with BatchNorm, the AdaLN autoregressive predictor,
an action Embedder over frameskip x action_dim) and trains it with a plain loop of ours with the same loss:
``MSE(pred, next emb) + 0.09 * SIGReg(emb)`` (LeWM), or PLDM's VCReg + temporal-alignment terms (PLDM).

Sizes: the published LeWM encoder is ViT-tiny (hidden 192, 12 layers, 3 heads) with patch 14 at 224 px;
here patch 8 at the benchmark's resolution (64 px: an 8 x 8 grid, the same patch size as our encoder).
Frames: the bag's frames every ``frameskip`` env steps; a block's action is the ``frameskip`` commands
concatenated (10-D), z-scored with the data's mean / std, as the authors' loader does.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from pusht_bench.swm_loader import load
from torch import Tensor, nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class PeerConfig:
    kind: str = "lewm"  # "lewm" or "pldm"
    resolution: int = 64
    patch_size: int = 8
    hidden: int = 192  # ViT-tiny
    depth: int = 12
    heads: int = 3
    pred_depth: int = 6
    pred_heads: int = 16
    pred_dim_head: int = 64
    pred_mlp: int = 2048
    proj_hidden: int = 2048
    history: int = 3  # frames the predictor conditions on (the authors' history_size)
    frameskip: int = 5
    action_dim: int = 2
    sigreg_weight: float = 0.09
    sigreg_proj: int = 1024
    lr: float = 3e-4  # published 5e-5 for GPU-hours of training; see README
    weight_decay: float = 1e-3
    batch_size: int = 32
    dropout: float = 0.1
    seed: int = 0


def build(cfg: PeerConfig) -> nn.Module:
    """LeWM (or PLDM) from the package's classes, sized by ``cfg``."""
    from transformers import ViTConfig, ViTModel

    swm = load()
    mod = swm["lewm_module"] if cfg.kind == "lewm" else swm["pldm_module"]
    torch.manual_seed(cfg.seed)
    encoder = ViTModel(ViTConfig(
        image_size=cfg.resolution, patch_size=cfg.patch_size, hidden_size=cfg.hidden,
        num_hidden_layers=cfg.depth, num_attention_heads=cfg.heads, intermediate_size=4 * cfg.hidden,
    ), add_pooling_layer=False)
    predictor = mod.Predictor(
        num_frames=cfg.history, depth=cfg.pred_depth, heads=cfg.pred_heads, mlp_dim=cfg.pred_mlp,
        input_dim=cfg.hidden, hidden_dim=cfg.hidden, output_dim=cfg.hidden, dim_head=cfg.pred_dim_head,
        dropout=cfg.dropout,
    )
    action_encoder = mod.Embedder(input_dim=cfg.frameskip * cfg.action_dim, emb_dim=cfg.hidden)
    projector = mod.MLP(cfg.hidden, cfg.proj_hidden, cfg.hidden, norm_fn=nn.BatchNorm1d)
    pred_proj = mod.MLP(cfg.hidden, cfg.proj_hidden, cfg.hidden, norm_fn=nn.BatchNorm1d)
    cls = swm["LeWM"] if cfg.kind == "lewm" else swm["PLDM"]
    return cls(encoder=encoder, predictor=predictor, action_encoder=action_encoder, projector=projector,
               pred_proj=pred_proj)


def to_pixels(frames_u8: Tensor) -> Tensor:
    """``[..., H, W, 3]`` uint8 -> ``[..., 3, H, W]`` ImageNet-normalised float (the authors' preprocessing)."""
    x = frames_u8.float().div(255.0).movedim(-1, -3)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x - mean) / std


class BlockWindows:
    """Training windows of ``history + 1`` frames ``frameskip`` env steps apart, with block actions.

    From per-step episodes (frames ``[T, H, W, 3]``, actions ``[T, A]``): window start s gives frames
    s, s+k, ..., and block j's action is actions[s+jk : s+(j+1)k] flattened (``[k*A]``).
    """

    def __init__(self, episodes: List[Any], history: int, frameskip: int) -> None:
        self.eps = episodes
        self.n, self.k = history + 1, frameskip
        span = (self.n - 1) * frameskip + frameskip  # the last frame's block action must exist too
        self.index = [(e, s) for e, ep in enumerate(episodes) for s in range(len(ep.actions) - span + 1)]
        if not self.index:
            raise ValueError(f"no episode is long enough for windows of {span} steps")
        acts = np.concatenate([ep.actions for ep in episodes])  # [N, A]
        self.act_mean = np.tile(acts.mean(0), frameskip).astype(np.float32)
        self.act_std = np.tile(np.maximum(acts.std(0), 1e-6), frameskip).astype(np.float32)

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, idx: np.ndarray) -> Dict[str, Tensor]:
        frames, actions = [], []
        for i in idx:
            e, s = self.index[int(i)]
            ep = self.eps[e]
            steps = [s + j * self.k for j in range(self.n)]
            frames.append(ep.images[steps])
            actions.append(np.stack([ep.actions[t:t + self.k].reshape(-1) for t in steps]))
        act = (np.stack(actions) - self.act_mean) / self.act_std
        return {"pixels": to_pixels(torch.from_numpy(np.stack(frames))),  # [B, n, 3, H, W]
                "action": torch.from_numpy(act.astype(np.float32))}  # [B, n, k*A]


def _loss(model: nn.Module, cfg: PeerConfig, batch: Dict[str, Tensor], reg: nn.Module) -> Dict[str, Tensor]:
    out = model.encode(batch)
    emb, act_emb = out["emb"], out["act_emb"]  # [B, n, D], [B, n, D]
    pred = model.predict(emb[:, :cfg.history], act_emb[:, :cfg.history])  # [B, history, D]
    losses = {"pred_loss": (pred - emb[:, 1:]).pow(2).mean()}
    if cfg.kind == "lewm":
        losses["sigreg_loss"] = reg(emb.transpose(0, 1))
        losses["loss"] = losses["pred_loss"] + cfg.sigreg_weight * losses["sigreg_loss"]
    else:  # PLDM: VCReg (std + cov) and temporal alignment on the embeddings
        terms = reg(emb)
        losses.update({k: v for k, v in terms.items()})
        losses["loss"] = (losses["pred_loss"] + terms["std_loss"] + terms["cov_loss"]
                          + 0.1 * terms["temp_align_loss"])
    return losses


def train(episodes: List[Any], cfg: PeerConfig, seconds: float, max_steps: Optional[int] = None,
          log_every: int = 20) -> Dict[str, Any]:
    """Train for ``seconds`` of wall clock (or ``max_steps``); returns {"model", "windows", "metrics"}."""
    swm = load()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    model = build(cfg)
    win = BlockWindows(episodes, cfg.history, cfg.frameskip)
    reg = swm["SIGReg"](knots=17, num_proj=cfg.sigreg_proj) if cfg.kind == "lewm" else swm["PLDMLoss"]()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    warmup = 20
    model.train()
    t0, step, history = time.perf_counter(), 0, []
    while True:
        elapsed = time.perf_counter() - t0
        if (max_steps is not None and step >= max_steps) or (max_steps is None and elapsed >= seconds):
            break
        for g in opt.param_groups:
            g["lr"] = cfg.lr * min(1.0, (step + 1) / warmup)
        batch = win.batch(rng.integers(0, len(win), size=cfg.batch_size))
        losses = _loss(model, cfg, batch, reg)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        opt.step()
        step += 1
        if step % log_every == 0 or step == 1:
            row = {k: round(float(v.detach()), 5) for k, v in losses.items()}
            row.update(step=step, s=round(time.perf_counter() - t0, 1))
            history.append(row)
            print(f"[peer {cfg.kind}] {row}", flush=True)
    model.eval()
    return {
        "model": model,
        "windows": win,
        "metrics": {
            "steps": step,
            "train_s": time.perf_counter() - t0,
            "params": sum(p.numel() for p in model.parameters()),
            "final": history[-1] if history else {},
            "history": history,
            "config": asdict(cfg),
        },
    }


@dataclass
class PeerState:
    """Planner state for the peer: ``z [S, history, D]`` (newest last; only the last ``n`` are real) and
    ``acts [S, history, k*A]`` (normalised block action after each frame; the newest slot is filled by the
    candidate)."""

    z: Tensor
    acts: Tensor
    n: int

    @property
    def latest(self) -> Tensor:
        return self.z[:, -1]

    def expand_batch(self, size: int) -> PeerState:
        return PeerState(self.z.expand(size, -1, -1), self.acts.expand(size, -1, -1), self.n)


class PeerPlanning:
    """Adapters that let the project's RecedingHorizonController plan with the peer."""

    def __init__(self, model: nn.Module, cfg: PeerConfig, windows: BlockWindows) -> None:
        self.model, self.cfg = model, cfg
        self.mean = torch.from_numpy(windows.act_mean)
        self.std = torch.from_numpy(windows.act_std)

    @torch.no_grad()
    def encode(self, frame_u8: np.ndarray) -> Tensor:
        """``[H, W, 3]`` uint8 -> ``[D]`` embedding."""
        pixels = to_pixels(torch.from_numpy(np.ascontiguousarray(frame_u8)))[None, None]  # [1, 1, 3, H, W]
        return self.model.encode({"pixels": pixels})["emb"][0, 0]

    def state0(self, emb: Tensor, obs: Any = None) -> PeerState:
        """The frame repeated over the history (``obs``, the env's state, is not used: the peer sees pixels)."""
        h, d = self.cfg.history, emb.shape[-1]
        z = emb.view(1, 1, d).expand(1, h, d).clone()
        return PeerState(z, torch.zeros(1, h, self.mean.numel()), 1)

    def block_action(self, a: Tensor) -> Tensor:
        """``[S, A]`` held action -> ``[S, k*A]`` normalised block action (the command repeated k times)."""
        return (a.repeat(1, self.cfg.frameskip) - self.mean) / self.std

    def dynamics(self, state: PeerState, a: Tensor) -> PeerState:
        h, n = self.cfg.history, state.n
        acts = torch.cat([state.acts[:, :-1], self.block_action(a)[:, None]], dim=1)  # [S, h, kA]
        act_emb = self.model.action_encoder(acts[:, h - n:])
        nxt = self.model.predict(state.z[:, h - n:], act_emb)[:, -1]  # [S, D]
        z = torch.cat([state.z[:, 1:], nxt[:, None]], dim=1)
        acts = torch.cat([acts[:, 1:], torch.zeros_like(acts[:, :1])], dim=1)
        return PeerState(z, acts, min(n + 1, h))

    @staticmethod
    def frame_energy(z: Tensor, goal: Tensor) -> Tensor:
        return (z - goal).pow(2).sum()

    @staticmethod
    def energy(state: PeerState, goal: Tensor) -> Tensor:
        """LeWM's planning cost: squared L2 between the last predicted embedding and the goal's."""
        return (state.latest - goal.view(1, -1)).pow(2).sum(-1).float()


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

