"""Candidate ranking: does the energy order the planner's alternatives the way the true distance does?

A planner never follows an expert's trajectory: at each tick it compares S candidate futures of ONE state.
Here, at a few states along scripted held-out episodes, K random action sequences (H steps held for the
model's ``action.dt_s``) are played in copies of the true simulator; per state, the Spearman correlation of
the true final distance to the goal with
  - the energy of the ENCODED true final frames (``encoded``): is the representation enough to rank them?
  - the energy of the PREDICTED final latents (``predicted``, the world model's rollout from the encoded
    current frame, exactly what the planner scores): is the predictor enough?
The oracle (``evaluation/oracle.py``) ranks with the true distance itself, i.e. a correlation of 1.
Push candidates that never touch the block tie on the true distance; the correlation then also counts how
arbitrarily the energy orders them, so each state also reports the regret of the energy's pick: the true
distance of its lowest-energy candidate minus the best candidate's, beside the regret of a random pick.
For push, ``encoded_vs_tool`` correlates the same encoded energy with the TOOL's distance to where the goal
image shows the tool: well above the block correlation means the latent mostly encodes the tool.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Sequence

import numpy as np
import torch

from ami_world_model.evaluation.energy_quality import spearman


def _summary(rhos: Sequence[float], regrets: Sequence[float]) -> Dict[str, Any]:
    finite = [r for r in rhos if not math.isnan(r)]
    return {"states": len(rhos), "spearman_mean": float(np.mean(finite)) if finite else None,
            "spearman_median": float(np.median(finite)) if finite else None,
            "spearman_min": float(np.min(finite)) if finite else None,
            "pick_regret_m": float(np.mean(regrets)) if regrets else None}


def pick_regret(energies: np.ndarray, true: np.ndarray) -> float:
    """True distance of the lowest-energy candidate minus the best true distance (0: it picks the best)."""
    return float(true[int(np.argmin(energies))] - true.min())


def candidate_ranking(
    checkpoint: str,
    tasks: Sequence[str] = ("push", "reach"),
    seeds: Sequence[int] = tuple(range(300_000, 300_010)),
    states_per_episode: int = 3,
    candidates: int = 32,
    horizon_steps: int = 3,
    energy: str = "auto",
    rng_seed: int = 0,
) -> Dict[str, Dict[str, Any]]:
    """``{task: {"encoded": {...}, "predicted": {...}}}`` rank correlations (see the module docstring).

    States are spread evenly over each scripted episode (its start included); candidates are uniform random
    twists within the checkpoint's action bounds."""
    from ami_world_model.evaluation.energy_quality import latent_energies, model_energy
    from ami_world_model.models.checkpoint import load_world_model
    from ami_world_model.sim.batch import CellBatch
    from ami_world_model.sim.cell import SimCell
    from ami_world_model.sim.config import SimConfig
    from ami_world_model.sim.scripted import ScriptedExpert

    model = load_world_model(checkpoint).eval()
    energy_fn = model_energy(model, energy)
    spec, k = model.config.action, model.config.context_frames
    cell = SimCell(SimConfig(image_height=model.config.image.height, image_width=model.config.image.width))
    batch = CellBatch(cell, candidates)
    rng = np.random.default_rng(rng_seed)
    low, high = np.asarray(spec.low), np.asarray(spec.high)
    out: Dict[str, Dict[str, Any]] = {}
    try:
        for task in tasks:
            enc_rhos, pred_rhos, enc_reg, pred_reg, rand_reg, tool_rhos = [], [], [], [], [], []
            for seed in seeds:
                expert = ScriptedExpert()
                cell.reset(seed=seed, task=task)
                goal = cell.goal
                ticks = []  # the scripted episode's length decides where the probe states are
                for t in range(60):
                    if cell.success():
                        break
                    ticks.append(t)
                    cell.apply_twist(*expert.act(cell, goal))
                    cell.step()
                probe = set(np.linspace(0, max(0, len(ticks) - 1), states_per_episode).round().astype(int).tolist())
                cell.reset(seed=seed, task=task)
                expert.reset()
                read = batch.block_xy if task == "push" else batch.ee_xy
                target = (goal.block_position if task == "push" else goal.ee_position)[:2]
                for t in range(max(ticks, default=0) + 1):
                    if t in probe:
                        acts = rng.uniform(low, high, size=(candidates, horizon_steps, len(low)))  # [K, H, A]
                        slots = list(range(candidates))
                        batch.load_from_cell(slots)
                        for h in range(horizon_steps):
                            batch.step_twists(slots, acts[:, h], spec.dt_s)
                        true = np.linalg.norm(read(slots) - target, axis=1)  # [K]
                        tool = np.linalg.norm(batch.ee_xy(slots) - goal.ee_position[:2], axis=1)  # [K]
                        finals = []
                        for s in slots:
                            with cell.bound_to(batch.slots[s]):
                                finals.append(cell.render())
                        e_enc = latent_energies(model.encode, np.stack(finals), goal.image, energy_fn=energy_fn)
                        now = torch.from_numpy(cell.render().transpose(2, 0, 1)[None].copy()).float() / 255.0
                        with torch.inference_mode():
                            z = model.encode(now)  # [1, N, D]
                            z_goal = model.encode(
                                torch.from_numpy(goal.image.transpose(2, 0, 1)[None].copy()).float() / 255.0)
                            ctx = z.unsqueeze(1).expand(candidates, k, -1, -1)  # [K, k, N, D]
                            pred = model.rollout(ctx, torch.from_numpy(acts).float())[:, -1]  # [K, N, D]
                            e_pred = energy_fn(pred, z_goal).numpy()
                        enc_rhos.append(spearman(e_enc, true))
                        tool_rhos.append(spearman(e_enc, tool))
                        pred_rhos.append(spearman(e_pred, true))
                        enc_reg.append(pick_regret(e_enc, true))
                        pred_reg.append(pick_regret(e_pred, true))
                        rand_reg.append(float(true.mean() - true.min()))
                    cell.apply_twist(*expert.act(cell, goal))
                    cell.step()
            out[task] = {"encoded": _summary(enc_rhos, enc_reg), "predicted": _summary(pred_rhos, pred_reg),
                         **({"encoded_vs_tool": _summary(tool_rhos, [])} if task == "push" else {}),
                         "random_pick_regret_m": float(np.mean(rand_reg)) if rand_reg else None,
                         "candidates": candidates, "horizon_steps": horizon_steps, "seeds": list(seeds)}
    finally:
        cell.close()
    return out
