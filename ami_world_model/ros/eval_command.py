"""`ami-wm eval`: the closed-loop evaluation command (sim + planner node over real DDS, one process).

The protocol, its config and the outputs are ROS-free (``evaluation/closed_loop.py``); the run is
``ros/eval_harness.py``. This module only joins them into the command, so the core never imports ROS.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ami_world_model.evaluation.closed_loop import (  # noqa: F401 - add_arguments is this command's parser
    add_arguments,
    config_from_args,
    json_object,
    record_into_checkpoint,
    write_results_json,
)
from ami_world_model.evaluation.report import format_budget, format_headline_table
from ami_world_model.node_config import resolve_checkpoint
from ami_world_model.ros.eval_harness import evaluate


def main(args: argparse.Namespace) -> int:
    try:
        cfg = config_from_args(args)
        resolve_checkpoint(cfg.checkpoint)
    except (ValueError, FileNotFoundError) as e:
        print(f"ami-wm eval: {e}", file=sys.stderr)
        return 2
    print(f"evaluating {cfg.checkpoint} on {', '.join(cfg.tasks)}: {cfg.episodes} episodes each from seed "
          f"{cfg.seed}, {cfg.max_steps} ticks max, {'realtime' if cfg.realtime else 'lockstep'}, planner mode(s) "
          f"{' and '.join(cfg.modes)}", file=sys.stderr, flush=True)
    try:
        result = evaluate(cfg, args.domain_id)
    except (RuntimeError, ValueError, OSError) as e:  # e.g. a checkpoint the sim cannot be driven with
        print(f"ami-wm eval: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    summaries = result["summaries"]
    out = Path(cfg.out)
    write_results_json(result, out / "eval.json")
    if args.record_into_checkpoint:
        record_into_checkpoint(Path(result["checkpoint"]), summaries, result["protocol"], result["oracle"],
                               result["energy_quality"])
    if args.json:
        print(json.dumps(json_object(summaries)))
    else:
        print(format_headline_table(result["headline"]))
        for mode in cfg.modes:
            print("  " + format_budget(mode, result["budgets"].get(mode)))
        tol = ", ".join(f"{t} {result['protocol'][t]['tolerance_m'] * 100:.1f} cm" for t in cfg.tasks)
        print(f"success = within tolerance ({tol}) at the end of the episode, [95 % Wilson interval]; random: "
              f"uniform twists, same seeds; tick = frame published -> command received (wall); iters = mean "
              f"optimiser iterations per tick; wall {result['wall_s']:.0f} s")
        print("wrote " + ", ".join(list(result["files"].values()) + [str(out / "eval.json")]))
    return 0
