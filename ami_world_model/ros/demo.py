"""`ami-wm demo` (`make demo`): the shipped model on the simulated cell, planner vs random, over ROS 2.

Runs a handful of reach and push episodes (held-out seeds, distinct from the training data's) with the
simulated cell and the planner node over real DDS in one process (see evaluation/closed_loop.py for the
protocol, ros/eval_harness.py for the run), prints the table of success, distance and latency, and writes
the plot, the GIF and the JSON under results/demo/. The planner runs in the robot's mode (deadline, its search
auto-sized to this machine at configure) unless ``--mode fixed``; the demo prints which mode and budget ran.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ami_world_model.evaluation.closed_loop import MODES, EvalConfig, write_results_json
from ami_world_model.evaluation.report import format_budget, format_table
from ami_world_model.node_config import BACKENDS, DEFAULT_CHECKPOINT, resolve_checkpoint
from ami_world_model.ros.eval_harness import evaluate

DEMO_SEED = 90_000  # held out: collection and training use small seeds (0, 1, ... per episode)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help="world-model checkpoint (path stem)")
    p.add_argument("--episodes", type=int, default=10, help="episodes per task (and as many random ones)")
    p.add_argument("--max-steps", type=int, default=60, help="control ticks per episode at most (10 Hz)")
    p.add_argument("--seed", type=int, default=DEMO_SEED, help="first episode seed")
    p.add_argument("--backend", default=BACKENDS[0], choices=BACKENDS)
    p.add_argument("--out", default="results/demo", help="folder for the table, plot and GIF")
    p.add_argument("--gif-episodes", type=int, default=1, help="planner episodes per task in the GIF")
    p.add_argument("--mode", choices=MODES, default="deadline",
                   help="planner mode: deadline (the robot's; search auto-sized to this machine) or fixed "
                        "(samples x iterations every tick, no deadline)")


def main(args: argparse.Namespace) -> int:
    try:
        path = resolve_checkpoint(args.checkpoint)
    except FileNotFoundError:
        print(f"ami-wm demo: the world-model checkpoint {args.checkpoint!r} is missing "
              f"({args.checkpoint}.json / .safetensors).\n"
              "  Make the default model with `make model` (collect -> train -> export on the simulated cell),\n"
              "  or pass --checkpoint PATH to a checkpoint of your own.", file=sys.stderr)
        return 2
    cfg = EvalConfig(checkpoint=str(path), tasks=["reach", "push"], episodes=args.episodes, seed=args.seed,
                     backend=args.backend, max_steps=args.max_steps, out=args.out, gif_episodes=args.gif_episodes,
                     modes=[args.mode])
    print(f"ami-wm demo: model {path}\n  simulated cell + planner node over ROS 2 (DDS, sim time, lockstep); "
          f"{args.episodes} reach and {args.episodes} push episodes from seed {args.seed}, at most "
          f"{args.max_steps} ticks each; the same seeds with random actions as the baseline; planner mode "
          f"{args.mode}.", flush=True)
    t0 = time.perf_counter()
    result = evaluate(cfg)
    out = Path(args.out)
    json_path = write_results_json(result, out / "demo.json")
    print("\n" + format_table(result["summaries"]))
    print(f"planner {format_budget(args.mode, result['budgets'].get(args.mode))}")
    tol = ", ".join(f"{s['task']} {s['tolerance_m'] * 100:.1f} cm" for s in result["summaries"])
    print(f"success: within tolerance ({tol}) at the end of the episode; "
          "tick = frame published -> planner command received (wall)")
    print(f"\nwall time {time.perf_counter() - t0:.0f} s. Results in {out}/:")
    for name in list(result["files"].values()) + [str(json_path)]:
        print(f"  {name}")
    return 0
