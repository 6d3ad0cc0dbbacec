"""`ami-wm collect`: explore the simulated cell and record a rosbag2 like a real robot's ``ros2 bag record``.

Topics (sim time stamps, header stamp = receive time):
  /camera/image_raw (sensor_msgs/Image rgb8), /camera/camera_info, /joint_states (sensor_msgs/JointState),
  /servo_node/delta_twist_cmds (geometry_msgs/TwistStamped, base_link) — the actions,
  /tool_pose, /block_pose (geometry_msgs/PoseStamped, base_link) — ground-truth tool tip and block poses, as a
  fiducial tracker or TF would give them on a real cell (read-out targets: BagSpec.pose_topics),
  /episode_start (std_msgs/String, JSON {episode, seed, task}) — optional markers; episodes are also
  separated by a 1 s gap in time, which is all a reader needs on a real bag.
Each episode has T actions and T + 1 frames; the command after the last frame is a stop (zero twist).
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Optional

import numpy as np

IMAGE_TOPIC = "/camera/image_raw"
INFO_TOPIC = "/camera/camera_info"
JOINT_TOPIC = "/joint_states"
TWIST_TOPIC = "/servo_node/delta_twist_cmds"
EPISODE_TOPIC = "/episode_start"
TOOL_POSE_TOPIC = "/tool_pose"  # tool tip (pusher centre), identity orientation
BLOCK_POSE_TOPIC = "/block_pose"  # block centre and orientation (its free joint's quaternion)
EPISODE_GAP_S = 1.0  # sim-time gap between episodes (the reader splits at gaps > BagSpec.episode_gap_s)
COMMAND_LATENCY_S = 0.002  # a command is stamped a little after the frame it reacts to, as on a real robot


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="bag directory to create (must not exist)")
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--steps-per-episode", type=int, default=40, help="actions per episode (frames = T+1)")
    parser.add_argument("--seed", type=int, default=0, help="episode i uses seed + i")
    parser.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap")
    parser.add_argument("--randomize", action="store_true", help="randomise lights, colours, camera pose")
    parser.add_argument("--randomize-fraction", type=float, default=None, metavar="F",
                        help="randomise this fraction of the episodes, spread evenly (--randomize: 1)")
    parser.add_argument("--task", choices=["reach", "push", "mixed"], default="mixed",
                        help="start distribution (mixed alternates reach and push starts)")
    parser.add_argument("--image-size", type=int, nargs=2, default=[64, 64], metavar=("H", "W"))
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bar")


def randomized_episode(ep: int, fraction: float) -> bool:
    """Whether episode ``ep`` is randomised when a ``fraction`` of them are: spread evenly over pairs of
    episodes, so that with mixed tasks (reach, push alternating) both tasks get the same share."""
    j = ep // 2
    return math.floor((j + 1) * fraction + 1e-9) > math.floor(j * fraction + 1e-9)


def collect(out: Path, episodes: int, steps: int, seed: int, storage: str = "mcap", randomize: bool = False,
            task: str = "mixed", image_hw=(64, 64), progress: bool = True,
            randomize_fraction: Optional[float] = None) -> dict:
    """Run exploration and write the bag; returns a small report (counts, timings).

    ``randomize_fraction``: randomise lights, colours and camera pose in that fraction of the episodes (each
    from its own seed); None: all when ``randomize``, none otherwise."""
    from tqdm import tqdm

    from ami_world_model.data.bags import BagWriter
    from ami_world_model.sim.cell import SimCell
    from ami_world_model.sim.config import SimConfig
    from ami_world_model.sim.exploration import ExplorationPolicy

    if episodes < 1 or steps < 1:
        raise ValueError("--episodes and --steps-per-episode must be >= 1")
    fraction = (1.0 if randomize else 0.0) if randomize_fraction is None else float(randomize_fraction)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"--randomize-fraction must be in [0, 1], got {fraction}")
    randomize = fraction > 0
    cell = SimCell(SimConfig(image_height=int(image_hw[0]), image_width=int(image_hw[1]), randomize=randomize))
    policy = ExplorationPolicy()
    k = cell.camera_intrinsics()
    names = cell.joint_names
    base = 1.0  # sim time of the first frame; 0 would read as "no stamp"
    t0 = time.perf_counter()
    bar = tqdm(total=episodes * steps, desc="collect", unit="step", disable=not progress)
    randomized_episodes = 0
    block_moving_steps = 0  # steps in which the block moved > 1 mm: how much of the data has contact
    with BagWriter(out, storage=storage) as bag:
        for ep in range(episodes):
            ep_seed = seed + ep
            ep_task = task if task != "mixed" else ("reach", "push")[ep % 2]
            cell.config.randomize = randomized_episode(ep, fraction)  # reset restores the nominal look first
            randomized_episodes += int(cell.config.randomize)
            cell.reset(seed=ep_seed, task=ep_task)
            policy.reset(cell, np.random.default_rng([ep_seed, 17]))
            bag.string(EPISODE_TOPIC, base, json.dumps({"episode": ep, "seed": ep_seed, "task": ep_task}))
            for i in range(steps + 1):
                t = base + cell.time
                bag.image(IMAGE_TOPIC, t, cell.render())
                bag.camera_info(INFO_TOPIC, t, k, image_hw)
                bag.joint_state(JOINT_TOPIC, t, names, cell.joint_positions(), cell.joint_velocities())
                bag.pose_stamped(TOOL_POSE_TOPIC, t, cell.ee_position())
                bag.pose_stamped(BLOCK_POSE_TOPIC, t, cell.block_position(), cell.get_state().block[3:7])  # wxyz
                v = policy.act(cell) if i < steps else np.zeros(2)
                bag.twist_stamped(TWIST_TOPIC, t + COMMAND_LATENCY_S, (v[0], v[1], 0.0))
                if i < steps:
                    block_before = cell.block_position()
                    cell.apply_twist(v[0], v[1])
                    cell.step()
                    block_moving_steps += int(np.linalg.norm(cell.block_position() - block_before) > 1e-3)
                    bar.update(1)
            base = base + cell.time + EPISODE_GAP_S
        counts = dict(bag.counts)
    bar.close()
    cell.close()
    wall = time.perf_counter() - t0
    return {"bag": str(out), "episodes": episodes, "steps": episodes * steps, "wall_s": round(wall, 2),
            "steps_per_s": round(episodes * steps / max(wall, 1e-9), 1), "counts": counts,
            "mode_steps": policy.mode_counts, "block_moving_steps": block_moving_steps,
            "randomized_episodes": randomized_episodes}


def main(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists():
        print(f"error: {out} exists; choose a new --out directory")
        return 2
    try:
        report = collect(out, args.episodes, args.steps_per_episode, args.seed, args.storage, args.randomize,
                         args.task, tuple(args.image_size), progress=not args.no_progress,
                         randomize_fraction=args.randomize_fraction)
    except ValueError as e:
        print(f"error: {e}")
        return 2
    print(json.dumps(report))
    return 0
