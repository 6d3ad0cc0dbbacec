"""PushT play data: the peer's collection rule, recorded as a rosbag2 with the project's topics.

The rule is stable-worldmodel's ``WeakPolicy`` (envs/pusht/expert_policy.py): each env step, a uniform random
relative action in [-1, 1]^2, whose target (agent + action * action_scale) is clipped to within
``dist_constraint`` = 100 px of the block, so the tool stays near the block. ``WeakPolicy.get_action`` itself
fails on a single (non-vector) env ("setting an array element with a sequence"), so the rule is
re-implemented here, not imported.

Optionally (``hold_steps``) the rule's random draw is held for several steps in the training episodes, as a
planned block holds one command for the protocol's frameskip. Optionally a share of episodes are scripted
pushes (go behind the block, push through it) for when the random rule makes contact too rarely;
``contact_fraction`` in the stats says how often the block moved.

Bag layout (what ``ami-wm train`` reads by default, see ami_world_model/data/bags.py):
  /camera/image_raw               sensor_msgs/Image rgb8, one per env step (10 Hz sim time)
  /servo_node/delta_twist_cmds    geometry_msgs/TwistStamped, twist.linear.{x,y} = the relative action
                                  taken after that frame (same stamp as the frame)
  /episode_start                  std_msgs/String JSON {episode, seed, rule}; episodes also 1 s apart
  /agent_pose, /block_pose,       geometry_msgs/PoseStamped per frame (same stamp), frame "pusht":
  /block_tip_pose                 the agent, the T block's origin (the state's block xy, what the success test
                                  compares) and a point fixed on the T, TIP_LOCAL_PX along its stem, so that
                                  the block's angle is in the poses too. Units: env pixels / 1000 (POSE_SCALE),
                                  so the read-out's "mm" errors are env pixels; the block pose's quaternion
                                  carries its angle about z.
  /joint_states                   sensor_msgs/JointState per frame (same stamp), joints agent_x, agent_y:
                                  the agent's position and velocity (px, px/s, x POSE_SCALE), as a robot
                                  reports its joints; ours reads its velocity as its proprioceptive state,
                                  the state-model bound (state_model.py) both.
Held-out trajectories (not in the bag) go to an .npz with states, actions and frames for the evaluation.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
from pusht_bench.swm_loader import make_env

IMAGE_TOPIC = "/camera/image_raw"
COMMAND_TOPIC = "/servo_node/delta_twist_cmds"
EPISODE_TOPIC = "/episode_start"
# Poses for the read-out head (`ami-wm train predictor --pose-topic ...`): names agent, block, block_tip.
POSE_TOPICS = ("/agent_pose", "/block_pose", "/block_tip_pose")
# The agent as a robot reports itself: position and velocity (env px and px/s, x POSE_SCALE). Ours reads the
# velocity as its state (the pose-dynamics head needs it) and the state-model bound both; the peer trains on the
# image and the command only.
AGENT_STATE_TOPIC = "/joint_states"
AGENT_STATE_FIELD = "velocity"  # what ours reads of it as its proprioceptive state (--state-field)
AGENT_JOINTS = ("agent_x", "agent_y")
POSE_FRAME = "pusht"
POSE_SCALE = 1e-3  # pose units per env pixel: positions are px / 1000, so read-out errors in "mm" are px
# The T (env add_tee, scale 30, length 4): its bar spans y in [0, 30] and its stem y in [30, 120] in body
# coordinates, the body origin is the state's block position. The tip point is half the T's length (60 px)
# along the stem: an angle error of pi/9 (the success tolerance) moves it 21 px, about the 20 px position
# tolerance, so the read-out energy weighs angle and position as the success test does.
TIP_LOCAL_PX = (0.0, 60.0)
DIST_CONSTRAINT_PX = 100.0
HELDOUT_SEED = 1_000_000  # the held-out episodes' env seeds start here; their rule's draws too
PUSH_STANDOFF_PX = 70.0


def weak_policy_draw(rng: np.random.Generator) -> np.ndarray:
    """The WeakPolicy rule's random part: ``[2]`` uniform in [-1, 1]."""
    return rng.uniform(-1.0, 1.0, size=2)


def block_clipped_action(env: Any, draw: np.ndarray) -> np.ndarray:
    """The WeakPolicy rule's clip: the relative action whose target (agent + draw * action_scale) is kept
    within DIST_CONSTRAINT_PX of the block."""
    base = env.unwrapped
    agent = np.array(base.agent.position, dtype=np.float64)
    block = np.array(base.block.position, dtype=np.float64)
    target = agent + np.asarray(draw, dtype=np.float64) * base.action_scale
    target = np.clip(target, block - DIST_CONSTRAINT_PX, block + DIST_CONSTRAINT_PX)
    return np.clip((target - agent) / base.action_scale, -1.0, 1.0).astype(np.float32)


class ScriptedPush:
    """Go to a point behind the block (opposite a random push direction), then push through the block."""

    def __init__(self, rng: np.random.Generator) -> None:
        ang = rng.uniform(0, 2 * np.pi)
        self.direction = np.array([np.cos(ang), np.sin(ang)])
        self.noise = rng
        self.pushing = False

    def __call__(self, env: Any) -> np.ndarray:
        base = env.unwrapped
        agent = np.array(base.agent.position, dtype=np.float64)
        block = np.array(base.block.position, dtype=np.float64)
        behind = block - PUSH_STANDOFF_PX * self.direction
        if not self.pushing and np.linalg.norm(agent - behind) < 15.0:
            self.pushing = True
        target = block + 40.0 * self.direction if self.pushing else behind
        step = (target - agent) / base.action_scale + self.noise.normal(0.0, 0.1, size=2)
        return np.clip(step, -1.0, 1.0).astype(np.float32)


def pose_points(base: Any) -> np.ndarray:
    """``[3, 2]`` env pixels: agent, block origin, the tip point on the T's stem (``TIP_LOCAL_PX``)."""
    tip = base.block.local_to_world(TIP_LOCAL_PX)
    return np.array([tuple(base.agent.position), tuple(base.block.position), (tip.x, tip.y)], dtype=np.float64)


def _run_episode(env: Any, seed: int, steps: int, scripted: bool, rng: np.random.Generator,
                 render: bool = True, hold_steps: int = 1) -> Dict[str, np.ndarray]:
    """One episode: frames [T+1, H, W, 3], states [T+1, 7], actions [T, 2], block moved per step [T],
    poses [T+1, 3, 2] (env pixels: agent, block, block tip). ``hold_steps`` > 1: the random rule's draw is
    held for that many steps (the clip to the block still applies every step), as a planned block holds one
    command for the protocol's frameskip."""
    env.reset(seed=seed)
    base = env.unwrapped
    push = ScriptedPush(rng) if scripted else None
    frames = [env.render()] if render else []
    states = [base._get_obs()]  # 7-D: agent xy, block xy, block angle, agent velocity
    poses = [pose_points(base)]
    actions, moved = [], []
    for i in range(steps):
        if push is not None:
            a = push(env)
        else:
            draw = weak_policy_draw(rng)  # every step, so holding leaves the random stream as it was
            if i % hold_steps == 0:
                held = draw
            a = block_clipped_action(env, held)
        env.step(a)
        s = base._get_obs()
        moved.append(np.linalg.norm(s[2:4] - states[-1][2:4]) > 0.5 or abs(s[4] - states[-1][4]) > 1e-3)
        states.append(s)
        poses.append(pose_points(base))
        actions.append(a)
        if render:
            frames.append(env.render())
    return {
        "frames": np.stack(frames) if render else np.zeros((0,), np.uint8),
        "states": np.stack(states).astype(np.float64),
        "actions": np.stack(actions).astype(np.float32),
        "moved": np.array(moved, dtype=bool),
        "poses": np.stack(poses),
    }


def _write_poses(bag: Any, t: float, points_px: np.ndarray, block_angle: float) -> None:
    """The frame's three PoseStamped (``POSE_TOPICS``), positions in px * POSE_SCALE; the block's and the
    tip's orientation is the block angle about z (the read-out uses x, y only)."""
    yaw = (float(np.cos(block_angle / 2)), 0.0, 0.0, float(np.sin(block_angle / 2)))
    for k, (topic, xy) in enumerate(zip(POSE_TOPICS, points_px)):
        quat = (1.0, 0.0, 0.0, 0.0) if k == 0 else yaw
        bag.pose_stamped(topic, t, (float(xy[0]) * POSE_SCALE, float(xy[1]) * POSE_SCALE, 0.0), quat,
                         frame_id=POSE_FRAME)


def collect(bag_dir: Path, heldout_path: Path, episodes: int, steps: int, heldout_episodes: int,
            heldout_steps: int, resolution: int, seed: int = 0, push_fraction: float = 0.0,
            storage: str = "mcap", hold_steps: int = 1) -> Dict[str, Any]:
    """Record ``episodes`` training episodes into ``bag_dir`` and ``heldout_episodes`` into ``heldout_path``.

    ``hold_steps``: the training episodes' random draws are held that many steps (the held-out ones, which the
    evaluation's starts and goals come from, always follow the rule as published).

    Training seeds are ``seed + i``; held-out seeds start at ``seed + HELDOUT_SEED`` (never in the bag), and
    their random rule draws from a generator of that seed, not the training episodes'.
    Returns stats: frames, contact fraction, collection seconds.
    """
    from ami_world_model.data.bags import BagWriter

    env = make_env(resolution)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    moved_total, steps_total, frames_total = 0, 0, 0
    period = 1.0 / env.unwrapped.control_hz  # 0.1 s: one env step
    with BagWriter(bag_dir, storage=storage) as bag:
        t_base = 0.0
        for ep in range(episodes):
            scripted = bool(rng.uniform() < push_fraction)
            ep_seed = seed + ep
            out = _run_episode(env, ep_seed, steps, scripted, rng, hold_steps=hold_steps)
            rule = "scripted_push" if scripted else "weak_policy" + (f"_held_{hold_steps}" if hold_steps > 1 else "")
            bag.string(EPISODE_TOPIC, t_base, json.dumps({"episode": ep, "seed": ep_seed, "rule": rule}))
            for i in range(steps):  # the last frame has no action after it; it is not recorded
                t = t_base + 0.01 + i * period
                bag.image(IMAGE_TOPIC, t, out["frames"][i])
                a = out["actions"][i]
                bag.twist_stamped(COMMAND_TOPIC, t, (float(a[0]), float(a[1]), 0.0))
                _write_poses(bag, t, out["poses"][i], float(out["states"][i][4]))
                agent = out["states"][i]  # agent x, y (px) and velocity (px/s): the "robot's" joint state
                bag.joint_state(AGENT_STATE_TOPIC, t, AGENT_JOINTS, agent[0:2] * POSE_SCALE,
                                agent[5:7] * POSE_SCALE)
            frames_total += steps
            moved_total += int(out["moved"].sum())
            steps_total += steps
            t_base += steps * period + 1.0
    t_train = time.perf_counter() - t0

    # Their own random stream, so that the evaluation's episodes do not change with the training set's size
    # (until run 12 they continued the training episodes' stream).
    held_rng = np.random.default_rng(seed + HELDOUT_SEED)
    held = [_run_episode(env, seed + HELDOUT_SEED + i, heldout_steps, False, held_rng)
            for i in range(heldout_episodes)]
    np.savez_compressed(
        heldout_path,
        states=np.stack([h["states"] for h in held]),  # [E, T+1, 7]
        actions=np.stack([h["actions"] for h in held]),  # [E, T, 2]
        frames=np.stack([h["frames"] for h in held]),  # [E, T+1, H, W, 3]
        poses=np.stack([h["poses"] for h in held]),  # [E, T+1, 3, 2] env pixels
    )
    env.close()
    return {
        "episodes": episodes,
        "steps_per_episode": steps,
        "frames": frames_total,
        "push_fraction": push_fraction,
        "hold_steps": hold_steps,
        "contact_fraction": moved_total / max(steps_total, 1),
        "collect_s": t_train,
        "heldout_episodes": heldout_episodes,
        "heldout_steps": heldout_steps,
        "heldout_s": time.perf_counter() - t0 - t_train,
        "resolution": resolution,
        "pose_topics": list(POSE_TOPICS),
        "pose_units": f"env px x {POSE_SCALE:g}",
        "tip_local_px": list(TIP_LOCAL_PX),
    }


def load_heldout(path: Path) -> Dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def arena_walls(base: Any) -> List[List[float]]:
    """The arena's walls as ours' pose-dynamics head takes them (``--pose-dynamics-wall``): per static segment of
    the env's space, ``[x, y, nx, ny]``, a point on its surface (the segment pushed out by its radius) and its
    normal into the arena, in the poses' units (px x POSE_SCALE). Read from the env after ``reset``."""
    import pymunk

    centre = np.full(2, base.window_size / 2.0)
    walls = []
    for shape in base.space.static_body.shapes:
        if not isinstance(shape, pymunk.Segment):
            continue
        a, b = np.array(tuple(shape.a), dtype=np.float64), np.array(tuple(shape.b), dtype=np.float64)
        normal = np.array([a[1] - b[1], b[0] - a[0]]) / np.linalg.norm(b - a)
        if normal @ (centre - a) < 0:
            normal = -normal
        point = a + normal * shape.radius
        walls.append([float(point[0] * POSE_SCALE), float(point[1] * POSE_SCALE), float(normal[0]), float(normal[1])])
    return walls


def pose_targets(base: Any) -> np.ndarray:
    """``[P]`` the env's points (``pose_points``) in the units the bag's pose topics record (px x POSE_SCALE),
    flattened in ``POSE_TOPICS`` order: what ours' read-out and pose-dynamics head are trained on."""
    return pose_points(base).reshape(-1) * POSE_SCALE


def agent_joint_velocity(obs: np.ndarray) -> np.ndarray:
    """The env's 7-D observation -> the agent's joint velocity as /joint_states records it (x POSE_SCALE)."""
    return np.asarray(obs[5:7], dtype=np.float64) * POSE_SCALE


def agent_joint_position(obs: np.ndarray) -> np.ndarray:
    """The env's 7-D observation (or state) -> the agent's joint position as /joint_states records it (x
    POSE_SCALE): the read-out's agent point in its units."""
    return np.asarray(obs[0:2], dtype=np.float64) * POSE_SCALE
