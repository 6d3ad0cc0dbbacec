"""Node benchmarks: image message -> model input time, end-to-end latency over DDS, memory growth.

``run(quick)`` (used by ``ami-wm bench``) returns ``image_to_tensor_640x480_ms`` and the end-to-end
``e2e_latency_p50_ms`` / ``e2e_latency_p95_ms``: a 640x480 rgb8 frame published at 30 Hz by a peer node ->
the command planned from that frame received back by the peer (real DDS, both nodes in this process on an
executor; the frame is identified by its header stamp). The latency includes the wait for the next control
tick. The measurements (rclpy) are in ``ros/bench_node.py``; this module is ROS-free. The memory check
(RSS after N minutes vs after 1 minute) runs only on request:

    python -m ami_world_model.bench.node --long            # 10 minutes at 30 Hz
    python -m ami_world_model.bench.node --long --minutes 3
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Dict, List, Optional


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def bench_checkpoint(tmp: Path) -> tuple:
    """The default model when it is there, else an untrained model of the same (tiny) architecture."""
    from ami_world_model.node_config import DEFAULT_CHECKPOINT, resolve_checkpoint

    try:
        return str(resolve_checkpoint(DEFAULT_CHECKPOINT)), DEFAULT_CHECKPOINT
    except FileNotFoundError:
        import torch

        from ami_world_model.models.checkpoint import save_world_model
        from ami_world_model.models.config import WorldModelConfig
        from ami_world_model.models.world_model import WorldModel

        torch.manual_seed(0)
        return str(save_world_model(WorldModel(WorldModelConfig.tiny()), tmp / "tiny")), "untrained tiny"


def run(quick: bool = False) -> Dict[str, Any]:
    """The figures for ``ami-wm bench``: conversion time and end-to-end latency (no memory run)."""
    from ami_world_model.ros.bench_node import e2e_latency, image_to_tensor_ms  # rclpy: the measurement only

    out: Dict[str, Any] = {"image_to_tensor_640x480_ms": round(image_to_tensor_ms(50 if quick else 300), 3)}
    out.update(e2e_latency(90 if quick else 600))
    return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in out.items()}


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--long", action="store_true", help="also run the memory check (default 10 minutes)")
    p.add_argument("--minutes", type=float, default=10.0, help="length of the memory run")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    res = run(quick=a.quick)
    if a.long:
        from ami_world_model.ros.bench_node import memory_growth

        res.update(memory_growth(a.minutes))
    print(json.dumps(res, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
