"""The image-energy oracle: the oracle planner (true dynamics, ``evaluation/oracle.py``) scoring candidates with
a GOAL-IMAGE energy instead of the true distance: the L1 distance between the rendered outcome of each
candidate and the goal image, either in the checkpoint's latent space (``latent``: the energy the node
optimises, with a perfect predictor) or in raw pixels (``pixels``); or, for a model with a read-out head, the
weighted distance of the positions it reads from each rendered outcome and from the goal image (``readout``:
the node's energy for such a model, with a perfect predictor).

It separates the energy from the predictor: if this oracle pushes no better than the learned model, a better
predictor cannot help; the representation (or the goal-image energy itself) is what is short.

CLI: ``python -m ami_world_model.evaluation.image_oracle --checkpoint models/default --energy latent
--episodes 8`` (push, seeds 100000...). Slow: every candidate outcome is rendered (and encoded).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from ami_world_model.evaluation.oracle import OracleEpisode, SimDynamics, run_oracle_episode, summarize_oracle
from ami_world_model.sim.cell import SimCell

ENERGIES = ("latent", "pixels", "readout")


def image_features(kind: str, encode: Optional[Callable[[Tensor], Tensor]] = None
                   ) -> Callable[[np.ndarray], Tensor]:
    """``[B, H, W, 3]`` uint8 -> features ``[B, ...]``: the encoder's latents (``latent``; for ``readout``
    give an ``encode`` that returns the read-out positions) or the pixels in [0, 1]."""
    if kind not in ENERGIES:
        raise ValueError(f"energy must be one of {ENERGIES}, got {kind!r}")
    if kind in ("latent", "readout") and encode is None:
        raise ValueError(f"the {kind} energy needs an encoder")

    def feats(images: np.ndarray) -> Tensor:
        x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float() / 255.0
        with torch.inference_mode():
            return encode(x) if kind != "pixels" else x

    return feats


def l1_distance(features: Tensor, goal: Tensor) -> Tensor:
    """Mean absolute difference per candidate: [S, ...], [1, ...] -> [S]."""
    return (features - goal).abs().flatten(1).mean(1).float()


class ImageEnergyDynamics(SimDynamics):
    """SimDynamics whose energy renders each candidate's slot and compares it with the cell's goal image."""

    def __init__(self, cell: SimCell, max_samples: int, action_dt_s: float,
                 features: Callable[[np.ndarray], Tensor],
                 distance: Callable[[Tensor, Tensor], Tensor] = l1_distance) -> None:
        super().__init__(cell, max_samples, action_dt_s)
        self.features, self.distance = features, distance

    def distance_energy(self, task: str):
        cell = self.cell
        if cell.goal is None:
            raise ValueError("reset the cell (it holds the goal image) before making the energy")
        goal = self.features(cell.goal.image[None])  # [1, ...]

        def energy(state: Tensor, _goal: Tensor) -> Tensor:
            frames = []
            for s in state[:, 0].tolist():
                with cell.bound_to(self.batch.slots[s]):
                    frames.append(cell.render())
            return self.distance(self.features(np.stack(frames)), goal)  # [S]

        return energy


def run_image_oracle(cell: SimCell, task: str, seeds: Sequence[int], features: Callable[[np.ndarray], Tensor],
                     action_dt_s: float = 0.3, max_steps: int = 80,
                     distance: Callable[[Tensor, Tensor], Tensor] = l1_distance) -> list:
    """One oracle episode per seed with the image energy (the node's budget, fixed; see oracle.py)."""
    def make_dynamics(c: SimCell, n: int, dt: float) -> ImageEnergyDynamics:
        return ImageEnergyDynamics(c, n, dt, features, distance)

    episodes: list = []
    for seed in seeds:
        cell.reset(seed=seed, task=task)  # the goal image exists before the energy is made
        episodes.append(run_oracle_episode(cell, task, seed, action_dt_s=action_dt_s, max_steps=max_steps,
                                           make_dynamics=make_dynamics))
    return episodes


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", default="models/default")
    p.add_argument("--energy", choices=ENERGIES, default="latent")
    p.add_argument("--task", choices=["push", "reach"], default="push")
    p.add_argument("--episodes", type=int, default=8)
    p.add_argument("--seed", type=int, default=100_000)
    p.add_argument("--progress", action="store_true")
    args = p.parse_args(argv)
    from ami_world_model.models.checkpoint import load_world_model

    model = load_world_model(args.checkpoint).eval()
    distance = l1_distance
    encode = model.encode
    if args.energy == "readout":
        if model.readout is None:
            raise SystemExit(f"{args.checkpoint}: this model has no read-out head (trained without poses)")
        readout = model.readout
        encode, distance = (lambda x: readout(model.encode(x))), (lambda f, g: readout.distance(f, g[0]))
    feats = image_features(args.energy, encode)
    cell = SimCell()
    try:
        eps: list[OracleEpisode] = run_image_oracle(cell, args.task, range(args.seed, args.seed + args.episodes),
                                                    feats, action_dt_s=model.config.action.dt_s,
                                                    distance=distance)
    finally:
        cell.close()
    if args.progress:
        for e in eps:
            print(e.seed, e.success, round(e.final_distance_m, 3), e.steps, e.failure, file=sys.stderr)
    print(json.dumps({"energy": args.energy, **summarize_oracle(eps)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
