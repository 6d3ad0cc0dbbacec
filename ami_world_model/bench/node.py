"""The node benchmarks' ROS-free parts: which checkpoint they measure and the process's RSS.

The measurements themselves start nodes, so they live in ``ros/bench_node.py`` (``ami-wm bench`` runs its
``run(quick)`` as the "node" section).
"""
from __future__ import annotations

from pathlib import Path


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
