"""`ami-wm`: the offline jobs (collect, train, export, bench, eval, demo) and `run` (nodes, pip path).

Each subcommand lives in the module that owns the job and exposes
``add_arguments(parser)`` and ``main(args) -> int``. Only the chosen one is imported, so
``ami-wm --help`` stays fast and a job never pays for another's imports (torch, mujoco, rclpy).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

# name -> (module, one-line help)
COMMANDS = {
    "collect": ("ami_world_model.sim.collect", "explore the simulated cell and record a rosbag2"),
    "train": ("ami_world_model.training.cli", "train the JEPA encoder or the action-conditioned predictor"),
    "export": ("ami_world_model.inference.export_cli", "export a checkpoint to ONNX (and build TensorRT engines)"),
    "bench": ("ami_world_model.bench.cli", "measure speed and memory; write the results file"),
    "eval": ("ami_world_model.ros.eval_command", "closed-loop evaluation: sim + planner node over ROS 2"),
    "demo": ("ami_world_model.ros.demo", "the main job: evaluate the shipped model on the simulated cell"),
    "run": ("ami_world_model.ros.run", "start the planner (and sim) nodes in one process (pip-path launch)"),
}


def _top_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ami-wm",
        description="ami_world_model offline jobs. `ami-wm <command> --help` for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n" + "\n".join(f"  {k:<8} {v[1]}" for k, v in COMMANDS.items()),
    )
    p.add_argument("command", choices=sorted(COMMANDS), metavar="command")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        _top_parser().parse_args(argv[:1] or ["--help"])
        return 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"ami-wm {name}", description=COMMANDS[name][1])
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    return int(module.main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
