"""Latent-energy quality: does the energy the planner minimises track true progress towards the goal?

On held-out trajectories that do make progress (a scripted expert's), two numbers per set of episodes:
  - the Spearman rank correlation between the latent energy and the true distance to the goal, per episode,
    then averaged (1: the energy orders the frames exactly as the true distance does; 0: unrelated);
  - the fall fraction: over the steps where the true distance falls (by more than ``min_drop_m``), the share
    where the energy falls too (1: always; 0.5: chance).
Plus how many episodes' energy at the closest frame is no lower than at the start (the planner would see no
reason to go there). ``score_checkpoint`` produces the trajectories in the simulated cell and scores a
checkpoint's encoder with the planner's energy (``planning/energy.py``: the read-out distance for a model with a
read-out head, else L1).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

Trajectory = Tuple[Sequence[float], Sequence[float]]  # (energies [T], true distances [T])


def rank(x: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 with ties given their average rank (as Spearman's rho needs)."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(len(x), dtype=np.float64)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse]


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation of two equal-length sequences; NaN when either is constant or n < 3."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"spearman needs two 1-D sequences of one length, got {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("spearman: values must be finite")
    if len(a) < 3:
        return math.nan
    ra, rb = rank(a), rank(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = math.sqrt(float(ra @ ra) * float(rb @ rb))
    return float(ra @ rb) / denom if denom > 0 else math.nan


def falls(energy: Sequence[float], distance: Sequence[float], min_drop_m: float = 1e-3,
          stride: int = 1) -> Tuple[int, int]:
    """``(energy fell, true distance fell)`` counts over steps ``t -> t + stride``."""
    e, d = np.asarray(energy, dtype=np.float64), np.asarray(distance, dtype=np.float64)
    if e.shape != d.shape or e.ndim != 1:
        raise ValueError(f"energies and distances must be 1-D of one length, got {e.shape} and {d.shape}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    dd, de = d[stride:] - d[:-stride], e[stride:] - e[:-stride]
    progress = dd < -min_drop_m
    return int(np.sum(de[progress] < 0)), int(np.sum(progress))


@dataclass
class EnergyQuality:
    episodes: int
    spearman_mean: float  # mean over episodes of the per-episode rank correlation (NaN episodes skipped)
    spearman_min: float
    spearman_max: float
    fall_fraction: float  # pooled over all episodes' progress steps
    progress_steps: int  # steps where the true distance fell (the fall fraction's denominator)
    closest_not_lower: int  # episodes whose energy at the closest frame is >= the energy at the start
    spearman_per_episode: List[float] = field(default_factory=list)

    def as_dict(self) -> Dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def energy_quality(trajectories: Sequence[Trajectory], min_drop_m: float = 1e-3, stride: int = 1) -> EnergyQuality:
    """Score energies against true distances on ``trajectories`` (each ``(energies [T], distances [T])``).

    Args:
        trajectories: one pair per episode, frame by frame.
        min_drop_m: a true distance change smaller than this is not progress (sim jitter, a still block).
        stride: compare frames this many steps apart (e.g. the model's frame skip).
    """
    if not trajectories:
        raise ValueError("energy_quality needs at least one trajectory")
    rhos, fell, steps, not_lower = [], 0, 0, 0
    for energy, distance in trajectories:
        e, d = np.asarray(energy, dtype=np.float64), np.asarray(distance, dtype=np.float64)
        rhos.append(spearman(e, d))
        f, n = falls(e, d, min_drop_m, stride)
        fell, steps = fell + f, steps + n
        closest = int(np.argmin(d))
        not_lower += int(e[closest] >= e[0])
    finite = [r for r in rhos if not math.isnan(r)]
    nan = math.nan
    return EnergyQuality(
        episodes=len(trajectories),
        spearman_mean=float(np.mean(finite)) if finite else nan,
        spearman_min=float(np.min(finite)) if finite else nan,
        spearman_max=float(np.max(finite)) if finite else nan,
        fall_fraction=fell / steps if steps else nan,
        progress_steps=steps,
        closest_not_lower=not_lower,
        spearman_per_episode=rhos,
    )


def model_energy(model, kind: str = "auto"):
    """The planner's energy for ``model`` (a WorldModel): ``(latents [S,N,D], goal [1,N,D]) -> [S]``; "auto"
    is the read-out distance when the model has a read-out head, else latent L1 (``planning/energy.py``)."""
    from ami_world_model.planning.energy import make_energy

    return make_energy(kind, model.readout)


def latent_energies(encode, images: np.ndarray, goal_image: np.ndarray, kind: str = "l1",
                    batch: int = 64, energy_fn=None) -> np.ndarray:
    """The planner's energy of each frame to the goal frame.

    Args:
        encode: ``images [B, 3, H, W] float32 in [0, 1] -> latents [B, N, D]`` (``WorldModel.encode`` or a
            backend's ``encode``).
        images: ``[T, H, W, 3]`` uint8 frames.
        goal_image: ``[H, W, 3]`` uint8.
        kind: "l1" or "l2", as ``PlannerConfig.energy`` (ignored when ``energy_fn`` is given).
        energy_fn: ``(latents, goal latent) -> [B]``, e.g. ``model_energy(model)`` for the read-out energy.
    Returns:
        ``[T]`` energies.
    """
    import torch

    from ami_world_model.planning.energy import latent_energy

    def to_input(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).float() / 255.0  # [B, 3, H, W]

    with torch.inference_mode():
        goal = encode(to_input(goal_image[None]))  # [1, N, D]
        fn = energy_fn or (lambda z, g: latent_energy(z, g, kind))
        out = [fn(encode(to_input(images[i:i + batch])), goal) for i in range(0, len(images), batch)]
    return torch.cat(out).cpu().numpy().astype(np.float64)


def score_checkpoint(
    checkpoint: str,
    tasks: Sequence[str] = ("push", "reach"),
    seeds: Sequence[int] = tuple(range(300_000, 300_020)),
    max_steps: int = 80,
    strides: Sequence[int] = (1, 3),
    randomize: bool = False,
    energy: str = "auto",
    min_drop_m: float = 1e-3,
) -> Dict[str, Dict[str, Any]]:
    """Energy quality of a checkpoint's encoder on scripted held-out episodes in the simulated cell.

    Returns ``{task: {"stride_<k>": EnergyQuality.as_dict(), "expert_success": fraction, "seeds": [...]}}``;
    stride 1 compares consecutive frames, stride k compares frames one model step apart (frame skip k).
    Push also gets ``"pushing_stride_<k>"``: the same from the frame before the block first moves, i.e. without
    the approach, where the tool alone moves and the energy can fall while the block's distance stays put.
    """
    from ami_world_model.models.checkpoint import load_world_model
    from ami_world_model.sim.cell import SimCell
    from ami_world_model.sim.config import SimConfig
    from ami_world_model.sim.scripted import scripted_trajectory

    model = load_world_model(checkpoint).eval()
    energy_fn = model_energy(model, energy)
    image = model.config.image
    cell = SimCell(SimConfig(image_height=image.height, image_width=image.width, randomize=randomize))
    result: Dict[str, Dict[str, Any]] = {}
    try:
        for task in tasks:
            pairs, pushing, ok = [], [], 0
            for seed in seeds:
                tr = scripted_trajectory(cell, task, seed, max_steps=max_steps)
                ok += tr.success
                e = latent_energies(model.encode, tr.images, tr.goal_image, energy_fn=energy_fn)
                pairs.append((e, tr.distances_m))
                i = tr.first_block_move()
                pushing.append((e[i:], tr.distances_m[i:]))
            result[task] = {f"stride_{k}": energy_quality(pairs, min_drop_m, k).as_dict() for k in strides}
            if task == "push":
                result[task].update({f"pushing_stride_{k}": energy_quality(pushing, min_drop_m, k).as_dict()
                                     for k in strides})
            result[task].update(expert_success=ok / len(seeds), seeds=list(seeds))
    finally:
        cell.close()
    return result

