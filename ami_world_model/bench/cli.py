"""`ami-wm bench`: run the benchmark sections, print a table (or one JSON object), write results.

Each section is a module in this package with ``run(quick: bool) -> dict`` returning flat
figures (the JSON keys the issues name). Numbers are only compared within one run: every
ratio is of two figures measured here, now, on this machine.
"""
from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any, Dict

SECTIONS = ["training", "planning", "inference", "node"]
# Each section's module; the node's runs nodes over DDS, so it lives in ros/ (the core never imports ROS).
SECTION_MODULES = {**{name: f"ami_world_model.bench.{name}" for name in SECTIONS},
                   "node": "ami_world_model.ros.bench_node"}
DEFAULT_RESULTS = Path("benchmarks") / "results.json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of {SECTIONS}")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")
    p.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    p.add_argument("--out", type=Path, default=DEFAULT_RESULTS, help="results file (JSON) to write")
    p.add_argument("--no-write", action="store_true", help="do not write the results file")


def machine_info() -> Dict[str, Any]:
    import os

    import torch

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def main(args: argparse.Namespace) -> int:
    names = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in names if s not in SECTIONS]
    if unknown:
        print(f"unknown bench section(s) {unknown}; choose from {SECTIONS}", file=sys.stderr)
        return 2
    results: Dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine_info()}
    for name in names:
        t0 = time.perf_counter()
        mod = importlib.import_module(SECTION_MODULES[name])
        figures = mod.run(quick=args.quick)
        results.update(figures)
        if not args.json:
            print(f"[{name}] ({time.perf_counter() - t0:.1f} s)")
            for k, v in figures.items():
                if not isinstance(v, (dict, list)):
                    print(f"  {k:<34} {v}")
    if not args.no_write:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        previous = json.loads(args.out.read_text()) if args.out.exists() else {}
        previous.update(results)  # a partial run updates its own figures, keeps the others
        args.out.write_text(json.dumps(previous, indent=2, sort_keys=True) + "\n")
    if args.json:
        print(json.dumps(results, sort_keys=True))
    return 0
