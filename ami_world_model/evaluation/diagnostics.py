"""Where a failure comes from: the latent energy, the predictor, or the search (issue 13's diagnostics).

``run_diagnostics`` bundles, for one checkpoint and the simulated cell (no ROS):
  - ``energy``: latent-energy quality on scripted held-out episodes (``energy_quality.score_checkpoint``);
  - ``candidates``: how the encoded and the predicted energy rank random candidate futures of one state
    (``candidate_ranking.candidate_ranking``);
  - ``oracle``: the planner with the true dynamics and the true distance (``oracle.evaluate_oracle``), at the
    given budget and the checkpoint's action period.
Run it as ``python -m ami_world_model.evaluation.diagnostics --checkpoint models/default``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

PARTS = ("energy", "candidates", "oracle")


def run_diagnostics(
    checkpoint: str,
    tasks: Sequence[str] = ("push", "reach"),
    parts: Sequence[str] = PARTS,
    energy_seeds: Sequence[int] = tuple(range(300_000, 300_020)),
    oracle_seeds: Sequence[int] = tuple(range(100_000, 100_010)),
    candidate_seeds: Sequence[int] = tuple(range(300_000, 300_010)),
    planner: Optional[Dict[str, Any]] = None,
    max_steps: int = 80,
) -> Dict[str, Any]:
    """``{part: result, "<part>_wall_s": seconds}`` for each of ``parts`` (see the module docstring).

    ``planner`` overrides ``oracle.node_planner_config()`` (e.g. ``{"num_samples": 32}``)."""
    from ami_world_model.models.checkpoint import read_meta

    bad = [p for p in parts if p not in PARTS]
    if bad:
        raise ValueError(f"unknown diagnostics {bad}; choose from {PARTS}")
    out: Dict[str, Any] = {"checkpoint": checkpoint, "tasks": list(tasks)}
    for part in parts:
        t0 = time.perf_counter()
        if part == "energy":
            from ami_world_model.evaluation.energy_quality import score_checkpoint

            out[part] = score_checkpoint(checkpoint, tasks, energy_seeds, max_steps)
        elif part == "candidates":
            from ami_world_model.evaluation.candidate_ranking import candidate_ranking

            out[part] = candidate_ranking(checkpoint, tasks, candidate_seeds)
        else:
            from dataclasses import asdict

            from ami_world_model.evaluation.oracle import evaluate_oracle, node_planner_config

            cfg = node_planner_config(**(planner or {}))
            dt = float(read_meta(checkpoint)["config"]["action"]["dt_s"])
            out[part] = evaluate_oracle(tasks, oracle_seeds, cfg, action_dt_s=dt, max_steps=max_steps)
            out[part]["planner"] = {k: v for k, v in asdict(cfg).items()
                                    if k in ("method", "num_samples", "iterations", "top_k", "horizon_steps")}
            out[part]["action_dt_s"] = dt
        out[f"{part}_wall_s"] = time.perf_counter() - t0
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ami_world_model.evaluation.diagnostics", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="models/default")
    p.add_argument("--task", choices=["reach", "push", "all"], default="all")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {PARTS}")
    p.add_argument("--episodes", type=int, default=10, help="oracle episodes per task (seeds 100000, ...)")
    p.add_argument("--energy-episodes", type=int, default=20, help="scripted episodes per task (seeds 300000, ...)")
    p.add_argument("--samples", type=int, default=None, help="oracle planner samples (default: the node's 64)")
    p.add_argument("--iterations", type=int, default=None, help="oracle planner iterations (default: 4)")
    p.add_argument("--out", default=None, help="write the JSON here as well")
    args = p.parse_args(argv)
    planner = {k: v for k, v in (("num_samples", args.samples), ("iterations", args.iterations)) if v is not None}
    if "num_samples" in planner:
        planner["top_k"] = min(16, max(1, planner["num_samples"] // 2))
    try:
        out = run_diagnostics(
            args.checkpoint, ["reach", "push"] if args.task == "all" else [args.task],
            [s.strip() for s in args.parts.split(",") if s.strip()],
            energy_seeds=tuple(range(300_000, 300_000 + args.energy_episodes)),
            oracle_seeds=tuple(range(100_000, 100_000 + args.episodes)), planner=planner)
    except (ValueError, FileNotFoundError) as e:
        print(f"diagnostics: {e}", file=sys.stderr)
        return 2
    text = json.dumps(out, indent=1, default=float)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
